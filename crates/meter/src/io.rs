//! The wrappers: any `Read`/`Write` (and, with feature `tokio`, any
//! `AsyncRead`/`AsyncWrite`) with its bytes counted by a [`Recorder`].

use std::io::{self, IoSlice, IoSliceMut, Read, Write};

use crate::record::Phase;

/// Where a wrapper's counts go: a [`crate::ConnectionMeter`], a
/// [`crate::StreamMeter`], or [`Off`].
pub trait Recorder {
    /// `n` bytes were read (0 at end of stream).
    fn record_read(&self, n: usize);
    /// `n` bytes were written.
    fn record_write(&self, n: usize);
    /// A read or write failed.
    fn record_error(&self, phase: Phase, e: &io::Error);
}

/// Metering off: every call is empty and inlined away, so a
/// `Metered<S, Off>` costs what `S` costs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Off;

impl Recorder for Off {
    #[inline(always)]
    fn record_read(&self, _n: usize) {}
    #[inline(always)]
    fn record_write(&self, _n: usize) {}
    #[inline(always)]
    fn record_error(&self, _phase: Phase, _e: &io::Error) {}
}

/// An I/O object whose successful reads and writes add to `R`'s counters
/// and whose errors become the connection's first error. Interrupted and
/// would-block results are retried by the caller, so they count as
/// neither.
#[derive(Debug)]
pub struct Metered<S, R> {
    pub(crate) inner: S,
    pub(crate) recorder: R,
}

impl<S, R> Metered<S, R> {
    /// Wraps `inner`.
    pub fn new(inner: S, recorder: R) -> Self {
        Metered { inner, recorder }
    }

    /// The wrapped object.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped object, mutably; bytes moved through it directly are not
    /// counted.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The recorder.
    pub fn recorder(&self) -> &R {
        &self.recorder
    }

    /// The wrapped object and the recorder.
    pub fn into_parts(self) -> (S, R) {
        (self.inner, self.recorder)
    }
}

/// Whether an error is one the caller retries (`Interrupted`,
/// `WouldBlock`) rather than a failure worth recording.
pub fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
    )
}

impl<S: Read, R: Recorder> Read for Metered<S, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = self.inner.read(buf);
        self.count_read(&r);
        r
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        let r = self.inner.read_vectored(bufs);
        self.count_read(&r);
        r
    }
}

impl<S, R: Recorder> Metered<S, R> {
    #[inline]
    fn count_read(&self, r: &io::Result<usize>) {
        match r {
            Ok(n) => self.recorder.record_read(*n),
            Err(e) if !is_transient(e) => self.recorder.record_error(Phase::Read, e),
            Err(_) => {}
        }
    }

    /// A failure other than a read or write (a flush, a shutdown).
    fn count_error(&self, phase: Phase, e: &io::Error) {
        if !is_transient(e) {
            self.recorder.record_error(phase, e);
        }
    }

    #[inline]
    fn count_write(&self, r: &io::Result<usize>) {
        match r {
            Ok(n) => self.recorder.record_write(*n),
            Err(e) if !is_transient(e) => self.recorder.record_error(Phase::Write, e),
            Err(_) => {}
        }
    }
}

impl<S: Write, R: Recorder> Write for Metered<S, R> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let r = self.inner.write(buf);
        self.count_write(&r);
        r
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let r = self.inner.write_vectored(bufs);
        self.count_write(&r);
        r
    }

    fn flush(&mut self) -> io::Result<()> {
        let r = self.inner.flush();
        if let Err(e) = &r {
            self.count_error(Phase::Write, e);
        }
        r
    }
}

#[cfg(feature = "tokio")]
mod async_io {
    use std::io::{self, IoSlice};
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

    use super::{is_transient, Metered, Recorder};
    use crate::record::Phase;

    impl<S: AsyncRead + Unpin, R: Recorder + Unpin> AsyncRead for Metered<S, R> {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            let before = buf.filled().len();
            let r = Pin::new(&mut this.inner).poll_read(cx, buf);
            match &r {
                Poll::Ready(Ok(())) => this
                    .recorder
                    .record_read(buf.filled().len().saturating_sub(before)),
                Poll::Ready(Err(e)) if !is_transient(e) => {
                    this.recorder.record_error(Phase::Read, e)
                }
                _ => {}
            }
            r
        }
    }

    impl<S: AsyncWrite + Unpin, R: Recorder + Unpin> AsyncWrite for Metered<S, R> {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let this = self.get_mut();
            let r = Pin::new(&mut this.inner).poll_write(cx, buf);
            if let Poll::Ready(r) = &r {
                this.count_write(r);
            }
            r
        }

        fn poll_write_vectored(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let this = self.get_mut();
            let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
            if let Poll::Ready(r) = &r {
                this.count_write(r);
            }
            r
        }

        fn is_write_vectored(&self) -> bool {
            self.inner.is_write_vectored()
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            let r = Pin::new(&mut this.inner).poll_flush(cx);
            if let Poll::Ready(Err(e)) = &r {
                this.count_error(Phase::Write, e);
            }
            r
        }

        fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            let r = Pin::new(&mut this.inner).poll_shutdown(cx);
            if let Poll::Ready(Err(e)) = &r {
                this.count_error(Phase::Write, e);
            }
            r
        }
    }
}
