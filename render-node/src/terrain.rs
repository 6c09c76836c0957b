//! The neural terrain as Geometry OS draws it: a grid mesh of [`GRID`] x [`GRID`] vertices,
//! [`SIZE`] world units on a side, displaced by a heightmap (height = red channel x
//! [`HEIGHT_SCALE`], clamped to [`MIN_HEIGHT`]..[`MAX_HEIGHT`]), seen in perspective by a
//! [`Camera`].
//!
//! Map coordinates: `(u, v)` in 0..1 across the heightmap, `u` left to right, `v` from the
//! heightmap's first row (the far side, north) to its last (the near side). World
//! coordinates: x to the right, y up, z towards the viewer; the map's centre is the origin.
//! The figures are Geometry OS's (its terrain renderer: 256 x 256 vertices, height scale 50,
//! terrain size 1000, heights clamped to -10..100).

/// Vertices along each side of the mesh.
pub const GRID: u32 = 256;
/// World units from one edge of the terrain to the other.
pub const SIZE: f32 = 1000.0;
/// World units of height for a heightmap value of 1.0.
pub const HEIGHT_SCALE: f32 = 50.0;
/// Lowest height, world units.
pub const MIN_HEIGHT: f32 = -10.0;
/// Highest height, world units.
pub const MAX_HEIGHT: f32 = 100.0;

/// The world position of map point `(u, v)` at `height` (world units).
pub fn world(u: f32, v: f32, height: f32) -> [f32; 3] {
    [(u - 0.5) * SIZE, height, (v - 0.5) * SIZE]
}

/// The height of a heightmap value (its red channel, 0..1 for 8-bit formats).
pub fn height_of(value: f32) -> f32 {
    (value * HEIGHT_SCALE).clamp(MIN_HEIGHT, MAX_HEIGHT)
}

/// A perspective camera (right-handed, y up, depth 0..1 as wgpu clips it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Camera {
    /// Where it stands, world units.
    pub eye: [f32; 3],
    /// What it looks at, world units.
    pub target: [f32; 3],
    /// Vertical field of view, degrees.
    pub fov_y_degrees: f32,
    /// Near and far clipping distances, world units.
    pub near: f32,
    /// Far clipping distance, world units.
    pub far: f32,
}

impl Default for Camera {
    /// South of the terrain and above it, looking a little north of its centre: the whole map
    /// in view on a 16:9 or wider output, its far side towards the top.
    fn default() -> Camera {
        Camera {
            eye: [0.0, 450.0, 950.0],
            target: [0.0, 0.0, -50.0],
            fov_y_degrees: 60.0,
            near: 1.0,
            far: 5000.0,
        }
    }
}

type Mat4 = [[f32; 4]; 4];

fn sub(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn cross(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn dot(a: [f32; 3], b: [f32; 3]) -> f32 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn normalize(a: [f32; 3]) -> [f32; 3] {
    let n = dot(a, a).sqrt();
    [a[0] / n, a[1] / n, a[2] / n]
}

/// `a * b` for column-major matrices (`m[column][row]`).
fn mul(a: &Mat4, b: &Mat4) -> Mat4 {
    let mut out = [[0.0; 4]; 4];
    for (c, col) in out.iter_mut().enumerate() {
        for (r, cell) in col.iter_mut().enumerate() {
            *cell = (0..4).map(|k| a[k][r] * b[c][k]).sum();
        }
    }
    out
}

impl Camera {
    /// The view matrix (world to camera), column-major.
    pub fn view(&self) -> Mat4 {
        let f = normalize(sub(self.target, self.eye));
        let s = normalize(cross(f, [0.0, 1.0, 0.0]));
        let u = cross(s, f);
        [
            [s[0], u[0], -f[0], 0.0],
            [s[1], u[1], -f[1], 0.0],
            [s[2], u[2], -f[2], 0.0],
            [-dot(s, self.eye), -dot(u, self.eye), dot(f, self.eye), 1.0],
        ]
    }

    /// The projection matrix for an output `aspect` (width / height), column-major, mapping
    /// depth to 0..1.
    pub fn projection(&self, aspect: f32) -> Mat4 {
        let t = 1.0 / (self.fov_y_degrees.to_radians() / 2.0).tan();
        let (n, f) = (self.near, self.far);
        [
            [t / aspect, 0.0, 0.0, 0.0],
            [0.0, t, 0.0, 0.0],
            [0.0, 0.0, f / (n - f), -1.0],
            [0.0, 0.0, n * f / (n - f), 0.0],
        ]
    }

    /// Projection times view: world to clip space, column-major (as the shader takes it).
    pub fn view_projection(&self, aspect: f32) -> Mat4 {
        mul(&self.projection(aspect), &self.view())
    }

    /// Where world point `p` lands on a `width` x `height` output, in pixels from the
    /// top-left corner; `None` when it is behind the camera.
    pub fn project(&self, p: [f32; 3], (width, height): (u32, u32)) -> Option<(f32, f32)> {
        let m = self.view_projection(width as f32 / height as f32);
        let clip: Vec<f32> = (0..4)
            .map(|r| m[0][r] * p[0] + m[1][r] * p[1] + m[2][r] * p[2] + m[3][r])
            .collect();
        if clip[3] <= 0.0 {
            return None;
        }
        let (x, y) = (clip[0] / clip[3], clip[1] / clip[3]);
        Some((
            (x + 1.0) / 2.0 * width as f32,
            (1.0 - y) / 2.0 * height as f32,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_camera_sees_the_whole_map_far_side_up() {
        let c = Camera::default();
        let out = (1920, 1080);
        let far = c.project(world(0.5, 0.0, 0.0), out).unwrap();
        let near = c.project(world(0.5, 1.0, 0.0), out).unwrap();
        assert!(far.1 < near.1, "the far side is higher on screen");
        for (u, v) in [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0)] {
            let (x, y) = c.project(world(u, v, 0.0), out).unwrap();
            assert!(
                (0.0..1920.0).contains(&x) && (0.0..1080.0).contains(&y),
                "{u},{v}: {x},{y}"
            );
        }
        // Raised ground shows higher on screen.
        let up = c.project(world(0.5, 0.5, MAX_HEIGHT), out).unwrap();
        let flat = c.project(world(0.5, 0.5, 0.0), out).unwrap();
        assert!(up.1 < flat.1);
        // The target is the centre of the screen.
        let centre = c.project(c.target, out).unwrap();
        assert!((centre.0 - 960.0).abs() < 0.5 && (centre.1 - 540.0).abs() < 0.5);
    }

    #[test]
    fn heights_are_scaled_and_clamped() {
        assert_eq!(height_of(0.5), 25.0);
        assert_eq!(height_of(10.0), MAX_HEIGHT);
        assert_eq!(height_of(-1.0), MIN_HEIGHT);
    }
}
