//! The Hilbert curve of PixelRTS: curve index `d` to pixel `(x, y)` on an `n` x `n` grid.

/// Pixel `(x, y)` (x = column, y = row) of curve index `d` on a grid of side `n` (a power of
/// two), as the Geometry OS encoder walks it.
pub fn d2xy(n: u32, d: u64) -> (u32, u32) {
    let (mut x, mut y, mut t) = (0u64, 0u64, d);
    let mut s = 1u64;
    while s < n as u64 {
        let rx = 1 & (t >> 1);
        let ry = 1 & (t ^ rx);
        if ry == 0 {
            if rx == 1 {
                x = s - 1 - x;
                y = s - 1 - y;
            }
            std::mem::swap(&mut x, &mut y);
        }
        x += s * rx;
        y += s * ry;
        t >>= 2;
        s <<= 1;
    }
    (x as u32, y as u32)
}

#[cfg(test)]
mod tests {
    use super::d2xy;

    #[test]
    fn visits_every_pixel_once_in_adjacent_steps() {
        for order in 0..6 {
            let n = 1u32 << order;
            let mut seen = vec![false; (n * n) as usize];
            let mut prev: Option<(u32, u32)> = None;
            for d in 0..(n as u64 * n as u64) {
                let (x, y) = d2xy(n, d);
                assert!(x < n && y < n);
                assert!(!seen[(y * n + x) as usize], "pixel visited twice");
                seen[(y * n + x) as usize] = true;
                if let Some((px, py)) = prev {
                    assert_eq!(px.abs_diff(x) + py.abs_diff(y), 1, "a curve moves one step");
                }
                prev = Some((x, y));
            }
        }
    }

    #[test]
    fn first_steps_of_order_one() {
        assert_eq!(
            (0..4).map(|d| d2xy(2, d)).collect::<Vec<_>>(),
            [(0, 0), (0, 1), (1, 1), (1, 0)]
        );
    }
}
