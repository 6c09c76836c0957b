// The render node's two pipelines: the neural-terrain background and the windows.

struct Frame {
    size: vec2<f32>,     // output size in pixels
    time: f32,
    has_heightmap: f32,  // 1 when a heightmap was published, 0 for the default terrain
};

@group(0) @binding(0) var<uniform> frame: Frame;
@group(0) @binding(1) var heightmap: texture_2d<f32>;
@group(0) @binding(2) var nearest: sampler;

struct Vs {
    @builtin(position) pos: vec4<f32>,
    @location(0) uv: vec2<f32>,
};

// A triangle that covers the whole target.
@vertex
fn vs_full(@builtin(vertex_index) i: u32) -> Vs {
    let x = f32((i << 1u) & 2u);
    let y = f32(i & 2u);
    var out: Vs;
    out.pos = vec4<f32>(x * 2.0 - 1.0, 1.0 - y * 2.0, 0.0, 1.0);
    out.uv = vec2<f32>(x, y);
    return out;
}

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

fn height(uv: vec2<f32>) -> f32 {
    if (frame.has_heightmap > 0.5) {
        return textureSampleLevel(heightmap, nearest, uv, 0.0).r;
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

@fragment
fn fs_terrain(v: Vs) -> @location(0) vec4<f32> {
    let px = 1.0 / frame.size;
    let h = height(v.uv);
    let dx = height(v.uv + vec2<f32>(px.x, 0.0)) - h;
    let dy = height(v.uv + vec2<f32>(0.0, px.y)) - h;
    let light = clamp(0.6 - 40.0 * (dx + dy), 0.0, 1.0);
    let deep = vec3<f32>(0.02, 0.05, 0.12);
    let high = vec3<f32>(0.10, 0.55, 0.45);
    let color = mix(deep, high, h) * (0.5 + 0.5 * light);
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

@fragment
fn fs_window(v: Vs) -> @location(0) vec4<f32> {
    var c = textureSampleLevel(pixels, nearest, v.uv, 0.0);
    if (window.bgra > 0.5) {
        c = c.bgra;
    }
    if (window.opaque > 0.5) {
        c.a = 1.0;
    }
    return vec4<f32>(c.rgb, c.a * window.alpha);
}
