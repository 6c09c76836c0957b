//! A terminal buffer: text with ANSI escape sequences in, a grid of [`TerminalCell`]s out, the
//! payload of a `PIXEL_CELLS` render frame (the render node draws the glyphs on the GPU).
//!
//! ```
//! use gos_bus_client::terminal::Terminal;
//! let mut term = Terminal::new(20, 3).unwrap();
//! term.write(b"\x1b[32mok\x1b[0m 42\nnext");
//! assert_eq!(term.text(), "ok 42\nnext\n\n"); // a line per row
//! assert_eq!(term.cell(0, 0).fg, 2); // green
//! assert_eq!(term.cursor(), (4, 1));
//! ```
//!
//! Escape sequences are parsed by `vte` (Alacritty's parser, after Paul Williams' DEC
//! ANSI-compatible state machine). Understood, after ECMA-48 and xterm's ctlseqs:
//! - controls: LF (a new line, as a terminal with `onlcr` shows it), CR, BS, HT (every 8
//!   columns);
//! - SGR (`CSI ... m`): 0 reset, 1/22 bold, 4/24 underline, 7/27 inverse, 30-37/90-97 and
//!   40-47/100-107 colours, 38/48 with `;5;n` (256 colours) or `;2;r;g;b` (the nearest of the
//!   256), 39/49 defaults;
//! - cursor: CUU/CUD/CUF/CUB (`A`-`D`), CNL/CPL (`E`, `F`), CHA (`G`), CUP/HVP (`H`, `f`), save
//!   and restore with the pen (`s`, `u`, `ESC 7`, `ESC 8`), DECTCEM (`?25h`, `?25l`);
//! - erasing: ED (`J` 0-2; 3, the scrollback, has nothing to erase), EL (`K` 0-2); scrolling:
//!   SU/SD (`S`, `T`), and at the last row.
//!
//! Anything else is ignored. Text past the last column wraps to the next line. Characters take
//! the columns Unicode's East Asian Width gives them (`unicode-width`): a wide one (CJK, most
//! emoji) two cells, its glyph in the first; a zero-width one (combining marks, joiners,
//! variation selectors) none: it is dropped, so a decomposed accent shows as its base letter.

use gos_layouts::records::{
    CELL_ATTR_BOLD, CELL_ATTR_CURSOR, CELL_ATTR_INVERSE, CELL_ATTR_UNDERLINE, TERMINAL_MAX_COLUMNS,
    TERMINAL_MAX_ROWS,
};
use gos_layouts::TerminalCell;

/// Default foreground: palette index 7 (light grey).
pub const DEFAULT_FG: u8 = 7;
/// Default background: palette index 0 (black).
pub const DEFAULT_BG: u8 = 0;
/// Most columns a terminal has (`TERMINAL_MAX_COLUMNS`, which the render node enforces too).
pub const MAX_COLUMNS: u32 = TERMINAL_MAX_COLUMNS;
/// Most rows a terminal has (`TERMINAL_MAX_ROWS`).
pub const MAX_ROWS: u32 = TERMINAL_MAX_ROWS;

/// A grid of `columns` x `rows` cells with a cursor, written to with [`Terminal::write`].
pub struct Terminal {
    parser: vte::Parser,
    grid: Grid,
}

/// What the parser's actions change.
struct Grid {
    columns: usize,
    rows: usize,
    cells: Vec<TerminalCell>,
    col: usize,
    row: usize,
    /// The last column was written: the next character goes to the next line.
    wrap_pending: bool,
    pen: Pen,
    /// DECSC's saved cursor: position and pen.
    saved: (usize, usize, Pen),
    cursor_visible: bool,
}

#[derive(Clone, Copy)]
struct Pen {
    fg: u8,
    bg: u8,
    attrs: u8,
}

const PEN: Pen = Pen {
    fg: DEFAULT_FG,
    bg: DEFAULT_BG,
    attrs: 0,
};

impl Terminal {
    /// An empty `columns` x `rows` terminal, cursor at the top left.
    ///
    /// # Errors
    /// A size outside 1..=[`MAX_COLUMNS`] by 1..=[`MAX_ROWS`], in words.
    pub fn new(columns: u32, rows: u32) -> Result<Terminal, String> {
        if !(1..=MAX_COLUMNS).contains(&columns) || !(1..=MAX_ROWS).contains(&rows) {
            return Err(format!(
                "a terminal of {columns}x{rows} cells is not within 1..={MAX_COLUMNS} columns \
                 by 1..={MAX_ROWS} rows"
            ));
        }
        let (columns, rows) = (columns as usize, rows as usize);
        Ok(Terminal {
            parser: vte::Parser::new(),
            grid: Grid {
                columns,
                rows,
                cells: vec![blank(PEN); columns * rows],
                col: 0,
                row: 0,
                wrap_pending: false,
                pen: PEN,
                saved: (0, 0, PEN),
                cursor_visible: true,
            },
        })
    }

    /// Columns and rows.
    pub fn size(&self) -> (u32, u32) {
        (self.grid.columns as u32, self.grid.rows as u32)
    }

    /// Writes `bytes`: UTF-8 text with control characters and escape sequences (a sequence
    /// or character split across calls is completed by the next).
    pub fn write(&mut self, bytes: &[u8]) {
        self.parser.advance(&mut self.grid, bytes);
    }

    /// The cursor's (column, row), from 0.
    pub fn cursor(&self) -> (u32, u32) {
        (self.grid.col as u32, self.grid.row as u32)
    }

    /// The cell at (`column`, `row`), without the cursor's mark. Panics outside the grid.
    pub fn cell(&self, column: u32, row: u32) -> TerminalCell {
        let (c, r) = (column as usize, row as usize);
        assert!(
            c < self.grid.columns && r < self.grid.rows,
            "cell ({column}, {row}) is outside the {}x{} grid",
            self.grid.columns,
            self.grid.rows
        );
        self.grid.cells[r * self.grid.columns + c]
    }

    /// Bytes of the grid as a frame carries it: `columns * rows * 8`.
    pub fn byte_len(&self) -> usize {
        self.grid.cells.len() * size_of::<TerminalCell>()
    }

    /// Copies the grid, row by row, into `out` (at least [`Terminal::byte_len`] bytes; the
    /// rest is left alone), the cursor's cell marked with `CELL_ATTR_CURSOR` while the cursor
    /// is visible. Returns the bytes written, or `None` when `out` is too short.
    pub fn copy_cells(&self, out: &mut [u8]) -> Option<usize> {
        let n = self.byte_len();
        let out = out.get_mut(..n)?;
        out.copy_from_slice(bytemuck::cast_slice(&self.grid.cells));
        if self.grid.cursor_visible {
            let at =
                (self.grid.row * self.grid.columns + self.grid.col) * size_of::<TerminalCell>();
            out[at + std::mem::offset_of!(TerminalCell, attrs)] |= CELL_ATTR_CURSOR;
        }
        Some(n)
    }

    /// The grid's characters, a line per row with trailing blanks cut, each ending in `\n` (a
    /// wide character once, though it takes two cells).
    pub fn text(&self) -> String {
        let mut s = String::new();
        for row in self.grid.cells.chunks(self.grid.columns) {
            // Code point 0 is a wide character's second column: no character of its own.
            let line: String = row
                .iter()
                .filter(|c| c.codepoint != 0)
                .map(|c| char::from_u32(c.codepoint).unwrap_or('\u{fffd}'))
                .collect();
            s.push_str(line.trim_end());
            s.push('\n');
        }
        s
    }
}

fn blank(pen: Pen) -> TerminalCell {
    TerminalCell {
        codepoint: ' ' as u32,
        fg: pen.fg,
        bg: pen.bg,
        attrs: 0,
        reserved: 0,
    }
}

impl Grid {
    fn clear(&mut self, from: usize, to: usize) {
        let b = blank(self.pen);
        self.cells[from..to].fill(b);
    }

    fn at(&self) -> usize {
        self.row * self.columns + self.col
    }

    /// Scrolls the grid up by `n` rows (the top rows are lost), blank rows below.
    fn scroll_up(&mut self, n: usize) {
        let n = n.min(self.rows);
        self.cells.copy_within(n * self.columns.., 0);
        let len = self.cells.len();
        self.clear(len - n * self.columns, len);
    }

    fn scroll_down(&mut self, n: usize) {
        let n = n.min(self.rows);
        let len = self.cells.len();
        self.cells
            .copy_within(..len - n * self.columns, n * self.columns);
        self.clear(0, n * self.columns);
    }

    fn new_line(&mut self) {
        self.col = 0;
        self.wrap_pending = false;
        if self.row + 1 == self.rows {
            self.scroll_up(1);
        } else {
            self.row += 1;
        }
    }

    /// DECSC: the cursor's position and the pen.
    fn save(&mut self) {
        self.saved = (self.col, self.row, self.pen);
    }

    /// DECRC.
    fn restore(&mut self) {
        let (col, row, pen) = self.saved;
        self.goto(col, row);
        self.pen = pen;
    }

    fn goto(&mut self, col: usize, row: usize) {
        self.col = col.min(self.columns - 1);
        self.row = row.min(self.rows - 1);
        self.wrap_pending = false;
    }

    /// SGR: the pen's colours and attributes.
    fn sgr(&mut self, params: &vte::Params) {
        let groups: Vec<&[u16]> = params.iter().collect();
        if groups.is_empty() {
            self.pen = PEN;
            return;
        }
        let mut i = 0;
        while i < groups.len() {
            let g = groups[i];
            match g[0] {
                0 => self.pen = PEN,
                1 => self.pen.attrs |= CELL_ATTR_BOLD,
                22 => self.pen.attrs &= !CELL_ATTR_BOLD,
                4 => self.pen.attrs |= CELL_ATTR_UNDERLINE,
                24 => self.pen.attrs &= !CELL_ATTR_UNDERLINE,
                7 => self.pen.attrs |= CELL_ATTR_INVERSE,
                27 => self.pen.attrs &= !CELL_ATTR_INVERSE,
                n @ 30..=37 => self.pen.fg = (n - 30) as u8,
                n @ 90..=97 => self.pen.fg = (n - 90 + 8) as u8,
                n @ 40..=47 => self.pen.bg = (n - 40) as u8,
                n @ 100..=107 => self.pen.bg = (n - 100 + 8) as u8,
                39 => self.pen.fg = DEFAULT_FG,
                49 => self.pen.bg = DEFAULT_BG,
                n @ (38 | 48) => {
                    // `38:5:n` in one group, or `38;5;n` over the next ones.
                    let rest: Vec<u16> = if g.len() > 1 {
                        g[1..].to_vec()
                    } else {
                        groups[i + 1..].iter().map(|g| g[0]).collect()
                    };
                    let (colour, used) = extended_colour(&rest, g.len() > 1);
                    if g.len() == 1 {
                        i += used;
                    }
                    if let Some(c) = colour {
                        if n == 38 {
                            self.pen.fg = c;
                        } else {
                            self.pen.bg = c;
                        }
                    }
                }
                _ => {}
            }
            i += 1;
        }
    }
}

/// The palette index of an extended colour's parameters after 38 or 48 (`5, n` or `2, r, g,
/// b`) and how many parameters it took. In the colon form (`grouped`), ITU T.416's `2:id:r:g:b`
/// carries a colour-space id before the components.
fn extended_colour(p: &[u16], grouped: bool) -> (Option<u8>, usize) {
    if let (true, [2, _, r, g, b, ..]) = (grouped, p) {
        return (Some(nearest(*r, *g, *b)), 5);
    }
    match p {
        [5, n, ..] => (u8::try_from(*n).ok(), 2),
        [2, r, g, b, ..] => (Some(nearest(*r, *g, *b)), 4),
        [5] => (None, 1),
        [2, ..] => (None, p.len()),
        _ => (None, 0),
    }
}

/// The xterm 256-colour cube index nearest to (r, g, b) (or a grey of the ramp when nearer).
fn nearest(r: u16, g: u16, b: u16) -> u8 {
    let level = |v: u16| -> (u8, i32) {
        // The cube's levels: 0, 95, 135, 175, 215, 255.
        let levels = [0i32, 95, 135, 175, 215, 255];
        let v = i32::from(v.min(255));
        let (i, l) = levels
            .iter()
            .enumerate()
            .min_by_key(|(_, l)| (v - **l).abs())
            .expect("six levels");
        (i as u8, *l)
    };
    let (ri, rl) = level(r);
    let (gi, gl) = level(g);
    let (bi, bl) = level(b);
    let cube = 16 + 36 * ri + 6 * gi + bi;
    let (r, g, b) = (
        i32::from(r.min(255)),
        i32::from(g.min(255)),
        i32::from(b.min(255)),
    );
    let cube_err = (r - rl).pow(2) + (g - gl).pow(2) + (b - bl).pow(2);
    // The grey ramp: 8, 18, ..., 238.
    let avg = (r + g + b) / 3;
    let gi = ((avg - 3) / 10).clamp(0, 23);
    let grey = 8 + 10 * gi;
    let grey_err = (r - grey).pow(2) + (g - grey).pow(2) + (b - grey).pow(2);
    if grey_err < cube_err {
        232 + gi as u8
    } else {
        cube
    }
}

impl vte::Perform for Grid {
    fn print(&mut self, c: char) {
        // Columns as a terminal gives them (Unicode's East Asian Width, UAX #11): combining
        // marks, joiners and variation selectors take none (dropped: a precomposed character
        // shows), wide characters two, DEL and other controls none.
        let width = match unicode_width::UnicodeWidthChar::width(c) {
            None | Some(0) => return,
            Some(w) => w.min(2),
        };
        if self.wrap_pending || (width == 2 && self.col + 1 == self.columns && self.columns > 1) {
            self.new_line();
        }
        let cell = |codepoint| TerminalCell {
            codepoint,
            fg: self.pen.fg,
            bg: self.pen.bg,
            attrs: self.pen.attrs,
            reserved: 0,
        };
        let at = self.at();
        self.cells[at] = cell(c as u32);
        if width == 2 && self.col + 1 < self.columns {
            // The second column of a wide character: blank (code point 0).
            self.cells[at + 1] = cell(0);
            self.col += 1;
        }
        if self.col + 1 == self.columns {
            self.wrap_pending = true;
        } else {
            self.col += 1;
        }
    }

    fn execute(&mut self, byte: u8) {
        match byte {
            b'\n' | 0x0b | 0x0c => self.new_line(),
            b'\r' => {
                self.col = 0;
                self.wrap_pending = false;
            }
            0x08 => {
                self.col = self.col.saturating_sub(1);
                self.wrap_pending = false;
            }
            b'\t' => {
                let next = (self.col / 8 + 1) * 8;
                self.col = next.min(self.columns - 1);
            }
            _ => {}
        }
    }

    fn csi_dispatch(
        &mut self,
        params: &vte::Params,
        intermediates: &[u8],
        ignore: bool,
        action: char,
    ) {
        if ignore {
            return; // more parameters than the parser keeps: not what was sent
        }
        let arg = |i: usize, default: usize| -> usize {
            match params.iter().nth(i).map(|g| g[0]) {
                None | Some(0) => default,
                Some(v) => usize::from(v),
            }
        };
        let mode = params.iter().next().map_or(0, |g| g[0]);
        if intermediates == b"?" {
            if mode == 25 {
                match action {
                    'h' => self.cursor_visible = true,
                    'l' => self.cursor_visible = false,
                    _ => {}
                }
            }
            return;
        }
        if !intermediates.is_empty() {
            return;
        }
        let (col, row) = (self.col, self.row);
        match action {
            'm' => self.sgr(params),
            'A' => self.goto(col, row.saturating_sub(arg(0, 1))),
            'B' => self.goto(col, row.saturating_add(arg(0, 1))),
            'C' => self.goto(col.saturating_add(arg(0, 1)), row),
            'D' => self.goto(col.saturating_sub(arg(0, 1)), row),
            'E' => self.goto(0, row.saturating_add(arg(0, 1))),
            'F' => self.goto(0, row.saturating_sub(arg(0, 1))),
            'G' => self.goto(arg(0, 1) - 1, row),
            'H' | 'f' => self.goto(arg(1, 1) - 1, arg(0, 1) - 1),
            'J' => {
                let at = self.at();
                let len = self.cells.len();
                // Mode 3 erases the scrollback, which this terminal has not.
                match mode {
                    0 => self.clear(at, len),
                    1 => self.clear(0, at + 1),
                    2 => self.clear(0, len),
                    _ => {}
                }
                self.wrap_pending = false;
            }
            'K' => {
                let start = self.row * self.columns;
                let at = self.at();
                match mode {
                    0 => self.clear(at, start + self.columns),
                    1 => self.clear(start, at + 1),
                    2 => self.clear(start, start + self.columns),
                    _ => {}
                }
                self.wrap_pending = false;
            }
            'S' => self.scroll_up(arg(0, 1)),
            'T' => self.scroll_down(arg(0, 1)),
            's' => self.save(),
            'u' => self.restore(),
            _ => {}
        }
    }

    fn esc_dispatch(&mut self, intermediates: &[u8], _ignore: bool, byte: u8) {
        if !intermediates.is_empty() {
            return;
        }
        match byte {
            b'7' => self.save(),
            b'8' => self.restore(),
            b'c' => {
                // RIS: a full reset.
                self.pen = PEN;
                self.clear(0, self.cells.len());
                self.goto(0, 0);
                self.cursor_visible = true;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(text: &str, cols: u32, rows: u32) -> Terminal {
        let mut t = Terminal::new(cols, rows).unwrap();
        t.write(text.as_bytes());
        t
    }

    #[test]
    fn text_wraps_and_scrolls() {
        let t = term("abcdefgh\nline2\nline3\nline4", 5, 3);
        assert_eq!(t.text(), "line2\nline3\nline4\n");
        let t = term("abcdefg", 5, 3);
        assert_eq!(t.text(), "abcde\nfg\n\n");
        assert_eq!(t.cursor(), (2, 1));
        // The last column written leaves the cursor there until the next character.
        let t = term("abcde", 5, 3);
        assert_eq!(t.cursor(), (4, 0));
    }

    #[test]
    fn colours_and_attributes() {
        let t = term(
            "\x1b[31ma\x1b[1;44mb\x1b[0mc\x1b[38;5;200md\x1b[48;2;255;0;0me\x1b[7;4mf\x1b[39;49;27mg",
            10,
            1,
        );
        let c = |i| t.cell(i, 0);
        assert_eq!((c(0).fg, c(0).bg, c(0).attrs), (1, DEFAULT_BG, 0));
        assert_eq!((c(1).fg, c(1).bg, c(1).attrs), (1, 4, CELL_ATTR_BOLD));
        assert_eq!((c(2).fg, c(2).bg, c(2).attrs), (DEFAULT_FG, DEFAULT_BG, 0));
        assert_eq!(c(3).fg, 200);
        assert_eq!(c(4).bg, 196); // (255, 0, 0) is the cube's red corner
        assert_eq!(c(5).attrs, CELL_ATTR_INVERSE | CELL_ATTR_UNDERLINE);
        assert_eq!(
            (c(6).fg, c(6).bg, c(6).attrs),
            (DEFAULT_FG, DEFAULT_BG, CELL_ATTR_UNDERLINE)
        );
        let t = term("\x1b[38:5:33mx\x1b[92;101my", 4, 1);
        assert_eq!(t.cell(0, 0).fg, 33);
        assert_eq!((t.cell(1, 0).fg, t.cell(1, 0).bg), (10, 9));
    }

    #[test]
    fn cursor_moves_and_erases() {
        let t = term("hello\x1b[3D\x1b[K", 10, 2);
        assert_eq!(t.text(), "he\n\n");
        let t = term("\x1b[2;4Hx\x1b[1;1Hy", 10, 3);
        assert_eq!(t.text(), "y\n   x\n\n");
        let t = term("abc\ndef\x1b[2J", 10, 3);
        assert_eq!(t.text(), "\n\n\n");
        let t = term("ab\rX\tY", 12, 1);
        assert_eq!(t.text(), "Xb      Y\n");
        let t = term("a\x1b[sbc\x1b[uZ", 10, 1);
        assert_eq!(t.text(), "aZc\n");
    }

    #[test]
    fn sequences_split_across_writes_complete() {
        let mut t = Terminal::new(10, 1).unwrap();
        t.write(b"\x1b[3");
        t.write(b"2m\xc3");
        t.write(b"\xa9");
        assert_eq!(t.text(), "\u{e9}\n");
        assert_eq!(t.cell(0, 0).fg, 2);
    }

    #[test]
    fn the_cursor_is_marked_in_the_copy_only() {
        let t = term("ab", 4, 2);
        let mut out = vec![0u8; t.byte_len()];
        assert_eq!(t.copy_cells(&mut out), Some(64));
        let cells: &[TerminalCell] = bytemuck::cast_slice(&out);
        assert_eq!(cells[2].attrs, CELL_ATTR_CURSOR);
        assert_eq!(t.cell(2, 0).attrs, 0);
        assert_eq!(t.copy_cells(&mut [0u8; 63]), None);
        let t = term("ab\x1b[?25l", 4, 2);
        t.copy_cells(&mut out).unwrap();
        let cells: &[TerminalCell] = bytemuck::cast_slice(&out);
        assert!(cells.iter().all(|c| c.attrs & CELL_ATTR_CURSOR == 0));
    }

    #[test]
    fn edge_cases_of_erasing_moving_and_colours() {
        // Erasing at the last column ends the pending wrap (as xterm does).
        assert_eq!(term("abcde\x1b[KX", 5, 2).text(), "abcdX\n\n");
        assert_eq!(term("abcde\x1b[1KX", 5, 2).text(), "    X\n\n");
        // ED 3 erases the scrollback only: there is none.
        assert_eq!(term("ab\x1b[3Jc", 5, 1).text(), "abc\n");
        // Moves far past the grid stop at its edges; huge scrolls clear it.
        let t = term("\x1b[999;999Hx\x1b[65535A\x1b[65535Dy", 5, 3);
        assert_eq!(t.text(), "y\n\n    x\n");
        assert_eq!(term("ab\x1b[65535S", 5, 2).text(), "\n\n");
        assert_eq!(term("ab\x1b[65535T", 5, 2).text(), "\n\n");
        // True colour in the colon form, with and without the colour-space id.
        assert_eq!(term("\x1b[38:2::255:0:0mx", 3, 1).cell(0, 0).fg, 196);
        assert_eq!(term("\x1b[38:2:255:0:0mx", 3, 1).cell(0, 0).fg, 196);
        // Greys round to the nearest step of the ramp.
        assert_eq!(nearest(17, 17, 17), 233);
        // DECSC keeps the pen.
        let t = term("\x1b[31m\x1b7\x1b[0m\x1b8x", 3, 1);
        assert_eq!(t.cell(0, 0).fg, 1);
    }

    #[test]
    fn wide_and_zero_width_characters_take_their_columns() {
        // A wide character takes two cells: the glyph, then a blank continuation.
        let t = term("a\u{4e2d}b", 5, 1);
        assert_eq!(t.cell(1, 0).codepoint, 0x4e2d);
        assert_eq!(t.cell(2, 0).codepoint, 0);
        assert_eq!((t.cell(3, 0).codepoint, t.cursor()), ('b' as u32, (4, 0)));
        assert_eq!(t.text(), "a\u{4e2d}b\n");
        // At the last column it goes to the next line whole.
        let t = term("abcd\u{4e2d}", 5, 2);
        assert_eq!(t.text(), "abcd\n\u{4e2d}\n");
        // Combining marks, joiners, variation selectors and DEL take no cell.
        let t = term("e\u{301}\u{2764}\u{fe0f}\u{200d}x\u{7f}", 5, 1);
        assert_eq!(t.text(), "e\u{2764}x\n");
        assert_eq!(t.cursor(), (3, 0));
    }

    #[test]
    #[should_panic(expected = "outside the 3x1 grid")]
    fn a_cell_outside_the_grid_panics() {
        term("", 3, 1).cell(3, 0);
    }

    #[test]
    fn sizes_are_checked() {
        assert!(Terminal::new(0, 1).is_err());
        assert!(Terminal::new(MAX_COLUMNS + 1, 1).is_err());
        assert!(Terminal::new(80, MAX_ROWS + 1).is_err());
        assert_eq!(Terminal::new(80, 30).unwrap().byte_len(), 80 * 30 * 8);
    }
}
