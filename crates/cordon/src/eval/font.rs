//! A 5x7 bitmap font, drawn by hand, for the text that `cordon eval`'s transformations
//! burn into images (captions, overlaid text, a logo's letter, a screenshot's UI). Reposts
//! carry text like this; a font crate would be a dependency for a few dozen glyphs.

/// Width of a glyph, in font pixels.
pub const GLYPH_WIDTH: u32 = 5;
/// Height of a glyph, in font pixels.
pub const GLYPH_HEIGHT: u32 = 7;
/// Distance from one glyph's left edge to the next: one blank column between letters.
const ADVANCE: u32 = GLYPH_WIDTH + 1;

/// The rows of a glyph, top first; bit 4 is the leftmost column. Lower case is drawn as
/// upper case; characters without a glyph are drawn as `?`.
pub fn glyph(c: char) -> [u8; 7] {
    match c.to_ascii_uppercase() {
        'A' => [0b01110, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001],
        'B' => [0b11110, 0b10001, 0b10001, 0b11110, 0b10001, 0b10001, 0b11110],
        'C' => [0b01110, 0b10001, 0b10000, 0b10000, 0b10000, 0b10001, 0b01110],
        'D' => [0b11100, 0b10010, 0b10001, 0b10001, 0b10001, 0b10010, 0b11100],
        'E' => [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b11111],
        'F' => [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b10000],
        'G' => [0b01110, 0b10001, 0b10000, 0b10111, 0b10001, 0b10001, 0b01111],
        'H' => [0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001],
        'I' => [0b01110, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110],
        'J' => [0b00111, 0b00010, 0b00010, 0b00010, 0b00010, 0b10010, 0b01100],
        'K' => [0b10001, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0b10001],
        'L' => [0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b11111],
        'M' => [0b10001, 0b11011, 0b10101, 0b10101, 0b10001, 0b10001, 0b10001],
        'N' => [0b10001, 0b10001, 0b11001, 0b10101, 0b10011, 0b10001, 0b10001],
        'O' => [0b01110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110],
        'P' => [0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000, 0b10000],
        'Q' => [0b01110, 0b10001, 0b10001, 0b10001, 0b10101, 0b10010, 0b01101],
        'R' => [0b11110, 0b10001, 0b10001, 0b11110, 0b10100, 0b10010, 0b10001],
        'S' => [0b01111, 0b10000, 0b10000, 0b01110, 0b00001, 0b00001, 0b11110],
        'T' => [0b11111, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100],
        'U' => [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110],
        'V' => [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100],
        'W' => [0b10001, 0b10001, 0b10001, 0b10101, 0b10101, 0b10101, 0b01010],
        'X' => [0b10001, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0b10001],
        'Y' => [0b10001, 0b10001, 0b10001, 0b01010, 0b00100, 0b00100, 0b00100],
        'Z' => [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b11111],
        '0' => [0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110],
        '1' => [0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110],
        '2' => [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111],
        '3' => [0b11111, 0b00010, 0b00100, 0b00010, 0b00001, 0b10001, 0b01110],
        '4' => [0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010],
        '5' => [0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110],
        '6' => [0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110],
        '7' => [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000],
        '8' => [0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110],
        '9' => [0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100],
        ' ' => [0; 7],
        '.' => [0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b01100, 0b01100],
        ',' => [0b00000, 0b00000, 0b00000, 0b00000, 0b01100, 0b00100, 0b01000],
        '!' => [0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00000, 0b00100],
        '-' => [0b00000, 0b00000, 0b00000, 0b11111, 0b00000, 0b00000, 0b00000],
        ':' => [0b00000, 0b01100, 0b01100, 0b00000, 0b01100, 0b01100, 0b00000],
        '\'' => [0b01100, 0b00100, 0b01000, 0b00000, 0b00000, 0b00000, 0b00000],
        '/' => [0b00000, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b00000],
        '@' => [0b01110, 0b10001, 0b00001, 0b01101, 0b10101, 0b10101, 0b01110],
        '#' => [0b01010, 0b01010, 0b11111, 0b01010, 0b11111, 0b01010, 0b01010],
        // '?' and everything without a glyph of its own.
        _ => [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b00000, 0b00100],
    }
}

/// Rendered text: one flag per pixel, true where there is ink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mask {
    pub width: u32,
    pub height: u32,
    ink: Vec<bool>,
}

impl Mask {
    /// The mask grown by `radius` pixels in every direction (a square brush), and so
    /// `2 * radius` wider and taller: the outline drawn behind text.
    pub fn dilated(&self, radius: u32) -> Mask {
        let (width, height) = (self.width + 2 * radius, self.height + 2 * radius);
        // Rows first, then columns: a square brush is the two strokes one after the other.
        let mut rows = vec![false; (width * self.height) as usize];
        for y in 0..self.height {
            for x in 0..self.width {
                if self.get(x, y) {
                    let start = (y * width + x) as usize;
                    rows[start..=start + 2 * radius as usize].fill(true);
                }
            }
        }
        let mut ink = vec![false; (width * height) as usize];
        for y in 0..self.height {
            for x in 0..width {
                if rows[(y * width + x) as usize] {
                    for dy in 0..=2 * radius {
                        ink[((y + dy) * width + x) as usize] = true;
                    }
                }
            }
        }
        Mask { width, height, ink }
    }

    pub fn get(&self, x: u32, y: u32) -> bool {
        x < self.width && y < self.height && self.ink[(y * self.width + x) as usize]
    }
}

/// The width `text` takes at `scale` screen pixels per font pixel.
pub fn text_width(text: &str, scale: u32) -> u32 {
    let glyphs = text.chars().count() as u32;
    (glyphs * ADVANCE).saturating_sub(1) * scale
}

/// Renders one line of `text`, each font pixel a `scale` x `scale` block (nearest
/// neighbour: the blocky look of a bitmap font scaled up is fine for burnt-in text).
pub fn render(text: &str, scale: u32) -> Mask {
    let scale = scale.max(1);
    let width = text_width(text, scale);
    let height = GLYPH_HEIGHT * scale;
    let mut ink = vec![false; (width * height) as usize];
    for (i, c) in text.chars().enumerate() {
        let left = i as u32 * ADVANCE * scale;
        for (row, bits) in glyph(c).iter().enumerate() {
            for column in 0..GLYPH_WIDTH {
                if bits & (1 << (GLYPH_WIDTH - 1 - column)) == 0 {
                    continue;
                }
                let (x0, y0) = (left + column * scale, row as u32 * scale);
                for y in y0..y0 + scale {
                    let start = (y * width + x0) as usize;
                    ink[start..start + scale as usize].fill(true);
                }
            }
        }
    }
    Mask { width, height, ink }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scaled_glyph_has_its_bits_as_blocks() {
        let mask = render("I", 3);
        assert_eq!((mask.width, mask.height), (15, 21));
        // Top row of I is 01110: columns 1..4 inked, 0 and 4 blank.
        assert!(!mask.get(0, 0) && mask.get(3, 0) && mask.get(11, 2) && !mask.get(12, 0));
        // The stem (column 2) runs down the middle.
        assert!(mask.get(7, 10) && !mask.get(3, 10));
    }

    #[test]
    fn letters_are_spaced_by_one_column() {
        assert_eq!(text_width("AB", 1), 11);
        assert_eq!(text_width("", 4), 0);
        let mask = render("HH", 1);
        assert!(mask.get(4, 0) && !mask.get(5, 0) && mask.get(6, 0));
    }

    #[test]
    fn dilation_grows_a_dot_into_a_square() {
        let dot = render(".", 1);
        let grown = dot.dilated(2);
        assert_eq!((grown.width, grown.height), (dot.width + 4, dot.height + 4));
        // The dot's ink is columns 1-2 and rows 5-6; grown by 2 on each side and shifted
        // by the new margin of 2, it covers columns 1..=6 and rows 5..=10.
        assert!(grown.get(1, 5) && grown.get(6, 10) && !grown.get(0, 5) && !grown.get(7, 10));
    }

    #[test]
    fn lower_case_is_upper_case_and_unknowns_are_question_marks() {
        assert_eq!(glyph('a'), glyph('A'));
        assert_eq!(glyph('~'), glyph('?'));
    }
}
