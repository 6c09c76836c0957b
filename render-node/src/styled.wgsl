
// The entry point of a styled window: the style's colour, faded like any window.
@fragment
fn fs_styled(v: Vs) -> @location(0) vec4<f32> {
    let c = style(v.uv, window.rect.zw);
    return vec4<f32>(c.rgb, c.a * window.alpha);
}
