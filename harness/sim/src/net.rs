//! The engine's network seams, bound to turmoil's simulated network.
//!
//! The engine never opens sockets itself: its HTTP server takes an [`axum::serve::Listener`]
//! and its adapters send through a hyper connector. [`SimListener`] and [`SimConnector`]
//! are those two seams over `turmoil::net`, so the very code that runs on tokio sockets
//! in serve mode runs on simulated hosts, with simulated latency, partitions and crashes.

use hyper::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A turmoil TCP listener that axum can serve on.
pub struct SimListener(pub turmoil::net::TcpListener);

impl SimListener {
    /// Binds `port` on every address of the current simulated host.
    pub async fn bind(port: u16) -> io::Result<SimListener> {
        Ok(SimListener(turmoil::net::TcpListener::bind((std::net::Ipv4Addr::UNSPECIFIED, port)).await?))
    }
}

impl axum::serve::Listener for SimListener {
    type Io = turmoil::net::TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok(accepted) => return accepted,
                // A failed accept on the simulated network is a passing condition (the
                // peer went away); a short simulated pause avoids a busy loop.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(1)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// A hyper connector that dials over turmoil's network (host names resolve through turmoil).
#[derive(Clone, Copy, Debug, Default)]
pub struct SimConnector;

type Connecting = Pin<Box<dyn Future<Output = io::Result<SimStream>> + Send>>;

impl tower::Service<Uri> for SimConnector {
    type Response = SimStream;
    type Error = io::Error;
    type Future = Connecting;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        Box::pin(async move {
            let host =
                uri.host().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("no host in {uri}")))?;
            let port = uri.port_u16().unwrap_or(80);
            let stream = turmoil::net::TcpStream::connect((host, port)).await?;
            Ok(SimStream(TokioIo::new(stream)))
        })
    }
}

/// A simulated TCP stream as hyper's client wants it.
pub struct SimStream(TokioIo<turmoil::net::TcpStream>);

impl Connection for SimStream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl hyper::rt::Read for SimStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for SimStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}
