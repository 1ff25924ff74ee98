//! The simulation's clock: a fixed epoch plus turmoil's simulated elapsed time.
//!
//! Every host reads the same simulated time, and a host restarted after a crash reads on
//! where it left off — unlike a clock anchored to a host runtime's own start.

use smsim_core::clock::Clock;
use smsim_core::Timestamp;

/// The instant every simulation starts at (2023-11-14T22:13:20Z).
pub const EPOCH: Timestamp = Timestamp(1_700_000_000_000);

/// Simulated time since [`EPOCH`].
#[derive(Clone, Copy, Debug, Default)]
pub struct SimClock;

impl SimClock {
    /// Simulated milliseconds since the start (0 outside a simulation).
    pub fn elapsed_ms(&self) -> u64 {
        turmoil::sim_elapsed().map_or(0, |elapsed| elapsed.as_millis() as u64)
    }
}

impl Clock for SimClock {
    fn now(&self) -> Timestamp {
        EPOCH.plus_ms(self.elapsed_ms())
    }
}
