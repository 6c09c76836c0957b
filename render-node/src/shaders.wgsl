// The render node's pipelines: the neural terrain (a heightmap-displaced grid mesh in
// perspective, see terrain.rs) and the windows over it.

struct Frame {
    size: vec2<f32>,     // output size in pixels
    time: f32,
    has_heightmap: f32,  // 1 when a heightmap was published, 0 for the default terrain
    terrain: vec4<f32>,  // world size, height scale, lowest and highest height
    grid: vec4<f32>,     // vertices along a side (x)
    view_proj: mat4x4<f32>,
};

@group(0) @binding(0) var<uniform> frame: Frame;
@group(0) @binding(1) var heightmap: texture_2d<f32>;
@group(0) @binding(2) var nearest: sampler;

struct Vs {
    @builtin(position) pos: vec4<f32>,
    @location(0) uv: vec2<f32>,
};

fn hash(p: vec2<f32>) -> f32 {
    return fract(sin(dot(p, vec2<f32>(127.1, 311.7))) * 43758.5453);
}

fn noise(p: vec2<f32>) -> f32 {
    let i = floor(p);
    let f = fract(p);
    let u = f * f * (3.0 - 2.0 * f);
    return mix(mix(hash(i), hash(i + vec2<f32>(1.0, 0.0)), u.x),
               mix(hash(i + vec2<f32>(0.0, 1.0)), hash(i + vec2<f32>(1.0, 1.0)), u.x), u.y);
}

// The heightmap's value at map point uv (its red channel), or fBm noise without one.
fn map_value(uv: vec2<f32>) -> f32 {
    if (frame.has_heightmap > 0.5) {
        let dims = vec2<f32>(textureDimensions(heightmap));
        let t = vec2<i32>(clamp(uv, vec2<f32>(0.0), vec2<f32>(1.0)) * (dims - 1.0) + 0.5);
        return textureLoad(heightmap, t, 0).r;
    }
    var h = 0.0;
    var amp = 0.5;
    var p = uv * 6.0;
    for (var k = 0; k < 4; k = k + 1) {
        h = h + amp * noise(p);
        p = p * 2.0;
        amp = amp * 0.5;
    }
    return h;
}

struct TerrainVs {
    @builtin(position) pos: vec4<f32>,
    @location(0) world: vec3<f32>,
};

// Vertex i of a grid of cells x cells quads, six vertices (two triangles) per quad: its
// point, in quads from the top-left corner.
fn grid_point(i: u32, cells: u32) -> vec2<u32> {
    let k = i % 6u;
    let quad = i / 6u;
    var corner = vec2<u32>(0u, 0u);
    switch k {
        case 1u, 3u: { corner = vec2<u32>(1u, 0u); }
        case 2u, 5u: { corner = vec2<u32>(0u, 1u); }
        case 4u: { corner = vec2<u32>(1u, 1u); }
        default: {}
    }
    return vec2<u32>(quad % cells, quad / cells) + corner;
}

// The world position of map point uv, `lift` world units above the ground.
fn ground(uv: vec2<f32>, lift: f32) -> vec3<f32> {
    let h = clamp(map_value(uv) * frame.terrain.y, frame.terrain.z, frame.terrain.w) + lift;
    return vec3<f32>((uv.x - 0.5) * frame.terrain.x, h, (uv.y - 0.5) * frame.terrain.x);
}

@vertex
fn vs_terrain(@builtin(vertex_index) i: u32) -> TerrainVs {
    let cells = u32(frame.grid.x) - 1u;
    let uv = vec2<f32>(grid_point(i, cells)) / f32(cells);
    let world = ground(uv, 0.0);
    var out: TerrainVs;
    out.pos = frame.view_proj * vec4<f32>(world, 1.0);
    out.world = world;
    return out;
}

@fragment
fn fs_terrain(v: TerrainVs) -> @location(0) vec4<f32> {
    // Flat shading: the triangle's normal from the world position's derivatives.
    var n = normalize(cross(dpdx(v.world), dpdy(v.world)));
    if (n.y < 0.0) {
        n = -n;
    }
    let light = max(dot(n, normalize(vec3<f32>(-0.4, 0.8, 0.45))), 0.0);
    let t = clamp(v.world.y / frame.terrain.y, 0.0, 1.0);
    let deep = vec3<f32>(0.02, 0.05, 0.12);
    let high = vec3<f32>(0.10, 0.55, 0.45);
    let color = mix(deep, high, t) * (0.35 + 0.65 * light);
    return vec4<f32>(color, 1.0);
}

struct Window {
    rect: vec4<f32>,   // x, y, width, height in output pixels (after zoom)
    alpha: f32,        // 0..1: fades a source that stopped publishing
    bgra: f32,         // 1 when the pixels are BGRA: swap red and blue
    opaque: f32,       // 1 when alpha carries data (RTS textures): draw opaque
    pad2: f32,
};

@group(1) @binding(0) var<uniform> window: Window;
@group(1) @binding(1) var pixels: texture_2d<f32>;

@vertex
fn vs_window(@builtin(vertex_index) i: u32) -> Vs {
    let corner = vec2<f32>(f32(i & 1u), f32((i >> 1u) & 1u));
    let p = window.rect.xy + corner * window.rect.zw;
    var out: Vs;
    out.pos = vec4<f32>(p.x / frame.size.x * 2.0 - 1.0, 1.0 - p.y / frame.size.y * 2.0, 0.0, 1.0);
    out.uv = corner;
    return out;
}

// The window's own pixel at uv (0..1 across it), as RGBA whatever its format, opaque when
// its alpha carries data. Styles read the window through it.
fn window_texel(uv: vec2<f32>) -> vec4<f32> {
    var c = textureSampleLevel(pixels, nearest, uv, 0.0);
    if (window.bgra > 0.5) {
        c = c.bgra;
    }
    if (window.opaque > 0.5) {
        c.a = 1.0;
    }
    return c;
}

@fragment
fn fs_window(v: Vs) -> @location(0) vec4<f32> {
    let c = window_texel(v.uv);
    return vec4<f32>(c.rgb, c.a * window.alpha);
}

// A brick: an RTS texture laid on map cell window.rect (u0, v0, u1, v1), `window.alpha`
// world units above the ground, in window.pad2 x window.pad2 quads that follow it.
@vertex
fn vs_brick(@builtin(vertex_index) i: u32) -> Vs {
    let steps = u32(window.pad2);
    let f = vec2<f32>(grid_point(i, steps)) / f32(steps);
    let world = ground(mix(window.rect.xy, window.rect.zw, f), window.alpha);
    var out: Vs;
    out.pos = frame.view_proj * vec4<f32>(world, 1.0);
    out.uv = f;
    return out;
}

@fragment
fn fs_brick(v: Vs) -> @location(0) vec4<f32> {
    // Opaque: an RTS texture's alpha channel carries data.
    return vec4<f32>(textureSampleLevel(pixels, nearest, v.uv, 0.0).rgb, 1.0);
}
