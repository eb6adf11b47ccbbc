//! Where [`crate::PdqIndex`] keeps its hashes, by slot: one contiguous array that grows
//! without copying what it holds.
//!
//! A hash is 32-byte aligned so that it never straddles two cache lines (a search checks
//! tens of thousands at random; unaligned, it took half as long again). With that
//! alignment the allocator cannot grow a buffer in place, and copies it: an array of
//! 12.5 M hashes held every lookup for up to 0.8 s each time it grew by a quarter. On
//! Linux the array is an anonymous mapping instead, grown by `mremap`, which moves page
//! tables rather than bytes. (Segments of fixed size, the safe alternative, cost every
//! candidate check a second lookup: searches took 7-11 % longer.)

/// A stored hash, aligned so that it never straddles two cache lines: checking a
/// candidate then costs one memory access.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(C, align(32))]
pub(crate) struct Words(pub [u64; 4]);

impl std::borrow::Borrow<[u64; 4]> for Words {
    fn borrow(&self) -> &[u64; 4] {
        &self.0
    }
}

pub(crate) use store::HashStore;

/// How many more entries an index's arrays (its hashes, and its ids beside them) make
/// room for once full: a quarter more at a time, not double. At 100 M hashes doubling
/// would map 3.2 GB more at once (not backed until written, but counted by
/// [`HashStore::memory_bytes`] and by a strict overcommit policy).
pub(crate) fn growth(len: usize) -> usize {
    (len / 4).max(1024)
}

impl HashStore {
    fn grow(&mut self) {
        self.reserve(growth(self.len()));
    }

    /// A store with only the slots `keep` says yes to, renumbered in order.
    pub fn retained(&self, keep: impl Fn(usize) -> bool) -> HashStore {
        let mut kept = HashStore::default();
        for (slot, words) in self.iter().enumerate() {
            if keep(slot) {
                kept.push(*words);
            }
        }
        kept
    }
}

#[cfg(target_os = "linux")]
mod store {
    use std::alloc::{Layout, handle_alloc_error};
    use std::ptr::NonNull;

    use super::Words;

    /// An anonymous private mapping holding `capacity` hashes, the first `len` of them
    /// written. Owns the mapping as a `Vec` owns its buffer.
    pub(crate) struct HashStore {
        /// Dangling (and nothing mapped) while `capacity` is 0.
        start: NonNull<Words>,
        len: usize,
        capacity: usize,
    }

    // SAFETY: the store owns its mapping outright, like a `Vec<Words>`; shared references
    // only read it.
    unsafe impl Send for HashStore {}
    unsafe impl Sync for HashStore {}

    impl Default for HashStore {
        fn default() -> Self {
            HashStore {
                start: NonNull::dangling(),
                len: 0,
                capacity: 0,
            }
        }
    }

    impl HashStore {
        pub fn with_capacity(capacity: usize) -> HashStore {
            let mut store = HashStore::default();
            store.reserve(capacity);
            store
        }

        pub fn push(&mut self, words: Words) {
            if self.len == self.capacity {
                self.grow();
            }
            // SAFETY: `len < capacity`, so the slot lies inside the mapping, which is
            // 4096-byte aligned and so aligned for `Words`.
            unsafe { self.start.as_ptr().add(self.len).write(words) };
            self.len += 1;
        }

        /// Makes room for `additional` more hashes: maps, or grows the mapping, moving it
        /// if it must (the kernel moves its pages, not their contents).
        pub fn reserve(&mut self, additional: usize) {
            if additional <= self.capacity - self.len {
                return;
            }
            let old_bytes = self.capacity * size_of::<Words>();
            let bytes = self
                .len
                .checked_add(additional)
                .and_then(|hashes| hashes.checked_mul(size_of::<Words>()))
                .and_then(|bytes| bytes.checked_next_multiple_of(4096))
                .unwrap_or_else(|| panic!("capacity overflow: {} + {additional} hashes", self.len));
            // SAFETY: a fresh private anonymous mapping, or the one this store owns, grown:
            // nothing else refers to it (`&mut self`), and pointers into it are rebuilt
            // from `start` after each call.
            let mapped = unsafe {
                if self.capacity == 0 {
                    libc::mmap(
                        std::ptr::null_mut(),
                        bytes,
                        libc::PROT_READ | libc::PROT_WRITE,
                        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                        -1,
                        0,
                    )
                } else {
                    libc::mremap(self.start.as_ptr().cast(), old_bytes, bytes, libc::MREMAP_MAYMOVE)
                }
            };
            let Some(start) = NonNull::new(mapped.cast::<Words>()).filter(|_| mapped != libc::MAP_FAILED)
            else {
                let layout =
                    Layout::from_size_align(bytes, align_of::<Words>()).unwrap_or(Layout::new::<Words>());
                handle_alloc_error(layout);
            };
            // The whole mapping, not only its 2 MiB-aligned middle as for a `Vec`: advice on
            // part of a mapping splits it in two, and `mremap` cannot grow a range that
            // spans two (it fails with EFAULT).
            // SAFETY: advice about this store's own mapping; it changes how the pages are
            // backed, never their contents. A failure (THP off) is harmless.
            unsafe { libc::madvise(start.as_ptr().cast(), bytes, libc::MADV_HUGEPAGE) };
            self.start = start;
            self.capacity = bytes / size_of::<Words>();
        }

        /// Bytes mapped (pages never written are not backed, but are counted).
        pub fn memory_bytes(&self) -> usize {
            self.capacity * size_of::<Words>()
        }
    }

    impl std::ops::Deref for HashStore {
        type Target = [Words];

        fn deref(&self) -> &[Words] {
            // SAFETY: the first `len` hashes of the mapping were written by `push`; with
            // nothing mapped, `len` is 0 and `start` is dangling but aligned, as an empty
            // slice allows.
            unsafe { std::slice::from_raw_parts(self.start.as_ptr(), self.len) }
        }
    }

    impl Drop for HashStore {
        fn drop(&mut self) {
            if self.capacity > 0 {
                // SAFETY: the mapping is this store's own, and nothing borrows it any more.
                unsafe { libc::munmap(self.start.as_ptr().cast(), self.capacity * size_of::<Words>()) };
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod store {
    use super::Words;

    /// Elsewhere than Linux, a plain vector: growing copies it.
    #[derive(Default)]
    pub(crate) struct HashStore(Vec<Words>);

    impl HashStore {
        pub fn with_capacity(capacity: usize) -> HashStore {
            HashStore(Vec::with_capacity(capacity))
        }

        pub fn push(&mut self, words: Words) {
            if self.0.len() == self.0.capacity() {
                self.grow();
            }
            self.0.push(words);
        }

        pub fn reserve(&mut self, additional: usize) {
            self.0.reserve_exact(additional);
        }

        pub fn memory_bytes(&self) -> usize {
            self.0.capacity() * size_of::<Words>()
        }
    }

    impl std::ops::Deref for HashStore {
        type Target = [Words];

        fn deref(&self) -> &[Words] {
            &self.0
        }
    }
}

/// Asks the kernel to back a large buffer with 2 MiB pages: the index is read at random,
/// and with 4 KiB pages nearly every read would also miss the TLB. Call it before the
/// buffer is first written, so that the pages are huge from the start.
pub(crate) fn advise_huge_pages<T>(buffer: &Vec<T>) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 1 << 21;
        let start = buffer.as_ptr() as usize;
        let end = start + buffer.capacity() * std::mem::size_of::<T>();
        let first = start.next_multiple_of(HUGE);
        let length = end.saturating_sub(first) / HUGE * HUGE;
        if length > 0 {
            // SAFETY: advice about pages of our own live allocation; MADV_HUGEPAGE changes
            // how they are backed, never their contents. A failure (THP off) is harmless.
            unsafe { libc::madvise(first as *mut libc::c_void, length, libc::MADV_HUGEPAGE) };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = buffer;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(i: usize) -> Words {
        Words([i as u64, !(i as u64), 0, 1])
    }

    /// Hashes pushed through many growths (each moving the mapping, perhaps) read back
    /// whole, aligned, and a filtered copy keeps the right ones.
    #[test]
    fn hashes_read_back_through_every_growth() {
        let mut store = HashStore::default();
        assert!(store.is_empty());
        let count = 300_000;
        let mut growths = 0;
        for i in 0..count {
            let before = store.memory_bytes();
            store.push(words(i));
            growths += usize::from(store.memory_bytes() != before);
        }
        assert!(growths > 10, "{growths} growths");
        assert_eq!(store.len(), count);
        assert!(store.iter().enumerate().all(|(i, w)| *w == words(i)));
        assert_eq!(store.as_ptr() as usize % 32, 0);
        let kept = store.retained(|slot| slot % 3 == 0);
        assert_eq!(kept.len(), count / 3);
        assert!(kept.iter().enumerate().all(|(i, w)| *w == words(3 * i)));
    }

    /// A size past what an address can hold stops, as a `Vec` does, rather than mapping
    /// less than asked for (where the writes would then land beyond the mapping).
    #[test]
    #[should_panic(expected = "capacity overflow")]
    fn a_capacity_past_the_address_space_stops() {
        HashStore::with_capacity(usize::MAX / 16);
    }

    #[test]
    fn a_store_built_to_size_holds_what_it_was_asked_to() {
        let mut store = HashStore::with_capacity(1000);
        let mapped = store.memory_bytes();
        assert!(mapped >= 1000 * 32);
        (0..1000).for_each(|i| store.push(words(i)));
        assert_eq!(
            store.memory_bytes(),
            mapped,
            "no growth within the capacity asked for"
        );
        assert_eq!(HashStore::with_capacity(0).memory_bytes(), 0);
        assert!(HashStore::default().is_empty());
    }
}
