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

/// The first `n` bytes along the curve of a `side` x `side` RGBA8 image (`pixels`, row by
/// row, at least `n` bytes' worth of curve): what [`d2xy`] per pixel gives, but computed block
/// by block. The curve's first `log2(b)` levels walk every `b` x `b` block the same way, and
/// the levels above only move and turn it, so each block of `b * b` steps (b = 16) costs three
/// [`d2xy`] calls and a table instead of one call per pixel.
///
/// # Panics
/// When `side` is not a power of two or `pixels` holds fewer than `side * side * 4` bytes or
/// fewer than `n` (the loader checks both before it calls this).
pub fn gather(pixels: &[u8], side: u32, n: usize) -> Vec<u8> {
    assert!(
        side.is_power_of_two() && pixels.len() as u64 >= side as u64 * side as u64 * 4,
        "gather needs a power-of-two side and its pixels"
    );
    assert!(
        n <= pixels.len(),
        "gather cannot take more than the pixels hold"
    );
    let mut out = vec![0u8; n];
    let b = side.clamp(1, 16);
    if b == 1 {
        out.copy_from_slice(&pixels[..n]);
        return out;
    }
    let per = (b * b) as usize;
    let local: Vec<(i64, i64)> = (0..per as u64)
        .map(|j| {
            let (x, y) = d2xy(b, j);
            (x as i64, y as i64)
        })
        .collect();
    let last = (b - 1) as i64;
    let find = |p: (i64, i64)| local.iter().position(|&q| q == p).unwrap_or(0) as u64;
    let (jb, jc) = (find((last, 0)), find((0, last)));
    let row = side as i64 * 4;
    for (k, block) in out.chunks_mut(per * 4).enumerate() {
        let base = (k * per) as u64;
        let at = |j: u64| {
            let (x, y) = d2xy(side, base + j);
            (x as i64, y as i64)
        };
        let (g0, gb, gc) = (at(0), at(jb), at(jc));
        let ex = ((gb.0 - g0.0) / last, (gb.1 - g0.1) / last);
        let ey = ((gc.0 - g0.0) / last, (gc.1 - g0.1) / last);
        for (px, &(lx, ly)) in block.chunks_mut(4).zip(&local) {
            let x = g0.0 + lx * ex.0 + ly * ey.0;
            let y = g0.1 + lx * ex.1 + ly * ey.1;
            let from = (y * row + x * 4) as usize;
            px.copy_from_slice(&pixels[from..from + px.len()]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{d2xy, gather};

    #[test]
    fn gather_is_d2xy_pixel_by_pixel() {
        for order in 0..8 {
            let side = 1u32 << order;
            let pixels: Vec<u8> = (0..side * side * 4).map(|i| (i * 31 % 251) as u8).collect();
            let all = (side * side * 4) as usize;
            for n in [0, 1, 5, all / 3, all].into_iter().filter(|&n| n <= all) {
                let mut want = Vec::new();
                let mut d = 0;
                while want.len() < n {
                    let (x, y) = d2xy(side, d);
                    let at = ((y * side + x) * 4) as usize;
                    let take = (n - want.len()).min(4);
                    want.extend_from_slice(&pixels[at..at + take]);
                    d += 1;
                }
                assert_eq!(gather(&pixels, side, n), want, "side {side}, {n} bytes");
            }
        }
    }

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
