//! Gossip batches: several small messages on one topic sent as one
//! gossipsub message, so the publisher signs once and every hop checks one
//! signature, decrypts one frame and wakes once for the lot. Each item is
//! its length as a little-endian `u32`, then its bytes.

/// A batch's size limit, under gossipsub's transmit limit
/// ([`crate::announce::MAX_ANNOUNCEMENT_BYTES`]) with room for the
/// envelope (topic, sequence number, signature, key).
pub const MAX_BATCH_BYTES: usize = crate::announce::MAX_ANNOUNCEMENT_BYTES - 1024;

/// Items waiting to be sent together.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    bytes: Vec<u8>,
}

impl Batch {
    /// Whether `item` still fits.
    pub(crate) fn fits(&self, item: &[u8]) -> bool {
        self.bytes.len() + 4 + item.len() <= MAX_BATCH_BYTES
    }

    /// Appends `item`; the caller checked that it [`fits`](Batch::fits).
    pub(crate) fn push(&mut self, item: &[u8]) {
        self.bytes
            .extend_from_slice(&(item.len() as u32).to_le_bytes());
        self.bytes.extend_from_slice(item);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The encoded batch, leaving this one empty.
    pub(crate) fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.bytes)
    }
}

/// The items of an encoded batch, or why it is malformed (then none of
/// them is trusted).
pub fn split(mut data: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut items = Vec::new();
    while !data.is_empty() {
        let (len, rest) = data
            .split_first_chunk::<4>()
            .ok_or_else(|| format!("{} trailing bytes are not an item length", data.len()))?;
        let len = u32::from_le_bytes(*len) as usize;
        if len > rest.len() {
            return Err(format!(
                "an item of {len} bytes runs past the batch's end ({} left)",
                rest.len()
            ));
        }
        let (item, rest) = rest.split_at(len);
        items.push(item);
        data = rest;
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_round_trip_and_a_batch_stays_under_its_limit() {
        let mut batch = Batch::default();
        let items: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; i as usize * 100]).collect();
        for item in &items {
            assert!(batch.fits(item));
            batch.push(item);
        }
        let bytes = batch.take();
        assert!(batch.is_empty());
        let back: Vec<Vec<u8>> = split(&bytes)
            .unwrap()
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect();
        assert_eq!(back, items);

        assert!(!batch.fits(&vec![0; MAX_BATCH_BYTES - 3]));
        assert!(batch.fits(&vec![0; MAX_BATCH_BYTES - 4]));
    }

    #[test]
    fn a_malformed_batch_is_rejected_whole() {
        let mut batch = Batch::default();
        batch.push(b"receipt");
        let bytes = batch.take();
        let cut = &bytes[..bytes.len() - 1];
        assert!(split(cut).unwrap_err().contains("runs past"), "{cut:?}");
        let mut trailing = bytes.clone();
        trailing.extend_from_slice(&[1, 0]);
        assert!(split(&trailing).unwrap_err().contains("trailing"));
        assert_eq!(split(&[]).unwrap(), Vec::<&[u8]>::new());
    }
}
