// Text on the GPU, appended to shaders.wgsl and to the constants text.rs writes from the
// layouts (CELL_W, CELL_H, ATLAS_COLUMNS, BORDER, TITLE_BAR, TITLE_MARGIN, ATTR_*): terminal
// cells drawn into a window's texture, and window decorations (title bar with the title,
// border). Glyphs come from the atlas (glyphs.rs): CELL_W x CELL_H slots, ATLAS_COLUMNS
// across.

struct Decor {
    outer: vec4<f32>,    // the decorated window: x, y, width, height in output pixels
    content: vec4<f32>,  // its pixels' rectangle
    bar: vec4<f32>,      // title bar colour (rgb) and alpha
    border: vec4<f32>,   // border colour (rgb), title length in glyphs (a)
    ink: vec4<f32>,      // title text colour
    title: array<vec4<u32>, 16>,  // the title's glyph slots, 4 per element
};

@group(1) @binding(2) var<uniform> decor: Decor;
@group(1) @binding(3) var glyph_atlas: texture_2d<f32>;
@group(1) @binding(4) var cells: texture_2d<u32>;

// Pixel (x, y) of the glyph in atlas slot `slot`: 1 lit, 0 dark.
fn glyph(slot: u32, x: u32, y: u32) -> f32 {
    let at = vec2<u32>((slot % ATLAS_COLUMNS) * CELL_W + x, (slot / ATLAS_COLUMNS) * CELL_H + y);
    return textureLoad(glyph_atlas, at, 0).r;
}

// The xterm 256-colour palette: the 16 ANSI colours (xterm's defaults), a 6x6x6 cube, 24
// greys.
fn palette(i: u32) -> vec3<f32> {
    var ansi = array<vec3<f32>, 16>(
        vec3<f32>(0.0, 0.0, 0.0), vec3<f32>(205.0, 0.0, 0.0),
        vec3<f32>(0.0, 205.0, 0.0), vec3<f32>(205.0, 205.0, 0.0),
        vec3<f32>(0.0, 0.0, 238.0), vec3<f32>(205.0, 0.0, 205.0),
        vec3<f32>(0.0, 205.0, 205.0), vec3<f32>(229.0, 229.0, 229.0),
        vec3<f32>(127.0, 127.0, 127.0), vec3<f32>(255.0, 0.0, 0.0),
        vec3<f32>(0.0, 255.0, 0.0), vec3<f32>(255.0, 255.0, 0.0),
        vec3<f32>(92.0, 92.0, 255.0), vec3<f32>(255.0, 0.0, 255.0),
        vec3<f32>(0.0, 255.0, 255.0), vec3<f32>(255.0, 255.0, 255.0));
    if (i < 16u) {
        return ansi[i] / 255.0;
    }
    if (i < 232u) {
        let c = i - 16u;
        let l = vec3<u32>(c / 36u, (c / 6u) % 6u, c % 6u);
        let v = select(vec3<f32>(0.0), 55.0 + 40.0 * vec3<f32>(l), l > vec3<u32>(0u));
        return v / 255.0;
    }
    let g = 8.0 + 10.0 * f32(i - 232u);
    return vec3<f32>(g / 255.0);
}

@vertex
fn vs_cells(@builtin(vertex_index) i: u32) -> @builtin(position) vec4<f32> {
    // One triangle over the whole target.
    let p = vec2<f32>(f32((i << 1u) & 2u), f32(i & 2u));
    return vec4<f32>(p * 2.0 - 1.0, 0.0, 1.0);
}

// A terminal window's pixel: its cell's glyph in the cell's colours. A cell is (atlas slot,
// fg | bg << 8 | attrs << 16).
@fragment
fn fs_cells(@builtin(position) pos: vec4<f32>) -> @location(0) vec4<f32> {
    let p = vec2<u32>(pos.xy);
    let cell = textureLoad(cells, vec2<u32>(p.x / CELL_W, p.y / CELL_H), 0).rg;
    let attrs = (cell.g >> 16u) & 255u;
    var fg_index = cell.g & 255u;
    if ((attrs & ATTR_BOLD) != 0u && fg_index < 8u) {
        fg_index = fg_index + 8u;  // bold: the bright variant
    }
    var fg = palette(fg_index);
    var bg = palette((cell.g >> 8u) & 255u);
    // Inverse, and the cursor's block (inverse again on an inverse cell).
    if (((attrs & ATTR_INVERSE) != 0u) != ((attrs & ATTR_CURSOR) != 0u)) {
        let t = fg;
        fg = bg;
        bg = t;
    }
    let gy = p.y % CELL_H;
    var lit = glyph(cell.r, p.x % CELL_W, gy);
    if ((attrs & ATTR_UNDERLINE) != 0u && gy == CELL_H - 1u) {
        lit = 1.0;
    }
    return vec4<f32>(mix(bg, fg, lit), 1.0);
}

@vertex
fn vs_decor(@builtin(vertex_index) i: u32) -> @builtin(position) vec4<f32> {
    let corner = vec2<f32>(f32(i & 1u), f32((i >> 1u) & 1u));
    let p = decor.outer.xy + corner * decor.outer.zw;
    return vec4<f32>(p.x / frame.size.x * 2.0 - 1.0, 1.0 - p.y / frame.size.y * 2.0, 0.0, 1.0);
}

// A decorated window's frame: the border, the title bar with the title TITLE_MARGIN px in
// and centred, nothing over the window's own pixels.
@fragment
fn fs_decor(@builtin(position) pos: vec4<f32>) -> @location(0) vec4<f32> {
    let p = pos.xy;
    let c = decor.content;
    if (p.x >= c.x && p.x < c.x + c.z && p.y >= c.y && p.y < c.y + c.w) {
        discard;
    }
    let o = decor.outer;
    let inside = p.x >= o.x + BORDER && p.x < o.x + o.z - BORDER && p.y >= o.y + BORDER
        && p.y < o.y + o.w - BORDER;
    if (!inside) {
        return vec4<f32>(decor.border.rgb, decor.bar.a);
    }
    // The title bar: the title's glyphs from TITLE_MARGIN px in, centred down the bar.
    let tx = p.x - (c.x + TITLE_MARGIN);
    let ty = p.y - (o.y + BORDER + floor((TITLE_BAR - f32(CELL_H)) / 2.0));
    var colour = decor.bar.rgb;
    if (tx >= 0.0 && ty >= 0.0 && ty < f32(CELL_H)) {
        let n = u32(tx) / CELL_W;
        if (n < u32(decor.border.a)) {
            let slot = decor.title[n / 4u][n % 4u];
            let lit = glyph(slot, u32(tx) % CELL_W, u32(ty));
            colour = mix(colour, decor.ink.rgb, lit);
        }
    }
    return vec4<f32>(colour, decor.bar.a);
}
