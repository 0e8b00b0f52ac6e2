//! The random bytes WASI hands guests (`random_get`), from one generator for the process.
//!
//! wasmtime-wasi's default gives every store two generators of its own, each in a box
//! (a ChaCha `StdRng`, 320 bytes, and a `SmallRng`): 352 bytes of host heap per container
//! that a parked subscriber never uses. [`SharedRandom`] is zero-sized, so boxing it
//! allocates nothing; every call takes bytes from one `StdRng` (a cryptographic generator,
//! seeded from the OS) behind a lock. Guests cannot predict each other's bytes from their
//! own without breaking ChaCha, and `random_get` is rare enough that the lock is never
//! contended in practice.

use std::convert::Infallible;
use std::sync::{Mutex, OnceLock};

use rand::rngs::StdRng;
use rand::{SeedableRng, TryRng};

fn generator() -> &'static Mutex<StdRng> {
    static GENERATOR: OnceLock<Mutex<StdRng>> = OnceLock::new();
    GENERATOR.get_or_init(|| Mutex::new(StdRng::from_rng(&mut rand::rng())))
}

/// A handle on the process's generator: zero bytes per container.
#[derive(Debug, Clone, Copy, Default)]
pub struct SharedRandom;

impl SharedRandom {
    fn with<T>(f: impl FnOnce(&mut StdRng) -> T) -> T {
        // A panic while holding the lock cannot leave a ChaCha state half-written in a way
        // that matters for randomness, so a poisoned lock is still good to use.
        let mut rng = generator().lock().unwrap_or_else(|e| e.into_inner());
        f(&mut rng)
    }
}

impl TryRng for SharedRandom {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Self::with(|rng| rng.try_next_u32())
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Self::with(|rng| rng.try_next_u64())
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Infallible> {
        Self::with(|rng| rng.try_fill_bytes(dest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn is_free_to_box_and_gives_different_bytes() {
        assert_eq!(std::mem::size_of::<SharedRandom>(), 0);
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        SharedRandom.fill_bytes(&mut a);
        SharedRandom.fill_bytes(&mut b);
        assert_ne!(a, b);
        assert_ne!(a, [0u8; 32]);
    }
}
