// crt_cyan: a cyan cathode-ray tube. The picture bulges (barrel curvature), every other
// scanline is dark, and a soft cyan glow comes from the neighbouring texels of the window.
// A style defines `style(uv, size)`: the colour at uv (0..1 across the window) of a window
// `size` output pixels large; `window_texel(uv)` reads the window's own pixels.

fn style(uv: vec2<f32>, size: vec2<f32>) -> vec4<f32> {
    // Curvature: points move outwards with the square of their distance from the centre.
    let c = uv * 2.0 - 1.0;
    let bent = c * (1.0 + 0.03 * dot(c, c));
    let at = bent * 0.5 + 0.5;
    if (any(at < vec2<f32>(0.0)) || any(at > vec2<f32>(1.0))) {
        return vec4<f32>(0.0, 0.0, 0.0, 1.0);
    }
    let texel = 1.0 / vec2<f32>(textureDimensions(pixels));
    let base = window_texel(at);
    // Glow: the average of the four neighbours, tinted cyan.
    let around = (window_texel(at + vec2<f32>(texel.x, 0.0)) + window_texel(at - vec2<f32>(texel.x, 0.0))
        + window_texel(at + vec2<f32>(0.0, texel.y)) + window_texel(at - vec2<f32>(0.0, texel.y))) * 0.25;
    let cyan = vec3<f32>(0.35, 1.0, 1.0);
    var rgb = base.rgb * cyan + around.rgb * cyan * 0.25;
    // Scanlines: odd output rows of the window at 45%.
    let row = u32(floor(uv.y * size.y));
    if (row % 2u == 1u) {
        rgb = rgb * 0.45;
    }
    return vec4<f32>(min(rgb, vec3<f32>(1.0)), base.a);
}
