//! The engine's long-running services: workers, reaper, reconciler, scheduler.
