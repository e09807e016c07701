//! A bitmap backend whose text keeps each glyph's left side bearing.
//!
//! Written by hand because plotters 0.3.7's `ab_glyph` text (and its master branch, checked at
//! commit c63248e) places each glyph's outline at the pen position truncated to a pixel and
//! drops the glyph's left side bearing (`px_bounds().min.x`). At the 13–15 px of our labels that
//! shifts narrow glyphs into their neighbours: "cl" renders as "d" ("doud load",
//! "dairvoyant"). [`FixedTextBitMap`] wraps plotters' `BitMapBackend`, delegates every drawing
//! call to it, and draws text itself: the same layout box, anchor, rotation and colour mixing as
//! plotters' default `draw_text`, with each glyph outlined at its fractional pen position so
//! `px_bounds` carries the bearing. Vertical placement is plotters' (baseline at half the font
//! size below the anchor), so layouts are unchanged. SVG output is text and is not affected.

use ab_glyph::{Font, FontRef, ScaleFont, point};
use plotters::backend::BitMapBackend;
use plotters::style::text_anchor::{HPos, VPos};
use plotters_backend::{BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind};

/// `BitMapBackend` with correct glyph placement; `font` must be the font the plots register.
pub struct FixedTextBitMap<'a> {
    inner: BitMapBackend<'a>,
    font: FontRef<'static>,
}

impl<'a> FixedTextBitMap<'a> {
    /// Wraps `inner`; `font` is parsed once (the caller's bundled TTF bytes).
    pub fn new(inner: BitMapBackend<'a>, font: &'static [u8]) -> Result<Self, ab_glyph::InvalidFont> {
        Ok(Self { inner, font: FontRef::try_from_slice(font)? })
    }

    /// Calls `draw(x, y, coverage)` for every pixel of `text` laid out from (0, 0), as plotters'
    /// font `draw` does, but with the glyphs at their exact pen positions.
    fn rasterize(&self, size: f32, text: &str, mut draw: impl FnMut(i32, i32, f32)) {
        let font = self.font.as_scaled(size);
        let mut pen = 0f32;
        let mut prev = None;
        for c in text.chars() {
            let id = font.glyph_id(c);
            if let Some(p) = prev {
                pen += font.kern(p, id);
            }
            prev = Some(id);
            let glyph = id.with_scale_and_position(size, point(pen, 0.0));
            if let Some(outline) = font.outline_glyph(glyph) {
                let b = outline.px_bounds();
                let (x0, y0) = (b.min.x as i32, (size / 2.0 + b.min.y) as i32);
                outline.draw(|x, y, coverage| draw(x0 + x as i32, y0 + y as i32, coverage));
            }
            pen += font.h_advance(id);
        }
    }
}

impl DrawingBackend for FixedTextBitMap<'_> {
    type ErrorType = <BitMapBackend<'static> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }
    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.ensure_prepared()
    }
    fn present(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.present()
    }
    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_pixel(point, color)
    }
    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_line(from, to, style)
    }
    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }
    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_path(path, style)
    }
    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_circle(center, radius, style, fill)
    }
    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.fill_polygon(vert, style)
    }
    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.blit_bitmap(pos, size, src)
    }

    /// plotters' default `draw_text` with [`FixedTextBitMap::rasterize`] in place of the
    /// font's own `draw`.
    fn draw_text<T: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &T,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let ((min_x, min_y), (max_x, max_y)) =
            style.layout_box(text).map_err(|e| DrawingErrorKind::FontError(Box::new(e)))?;
        let (width, height) = (max_x - min_x, max_y - min_y);
        let dx = match style.anchor().h_pos {
            HPos::Left => 0,
            HPos::Right => -width,
            HPos::Center => -width / 2,
        };
        let dy = match style.anchor().v_pos {
            VPos::Top => 0,
            VPos::Center => -height / 2,
            VPos::Bottom => -height,
        };
        let transform = style.transform();
        let (w, h) = self.get_size();
        let mut pixels = Vec::new();
        self.rasterize(style.size() as f32, text, |x, y, coverage| {
            let (x, y) = transform.transform(x + dx - min_x, y + dy - min_y);
            let (x, y) = (pos.0 + x, pos.1 + y);
            if x >= 0 && x < w as i32 && y >= 0 && y < h as i32 {
                let alpha = color.alpha * f64::from(coverage.clamp(0.0, 1.0));
                pixels.push(((x, y), BackendColor { alpha, rgb: color.rgb }));
            }
        });
        pixels.into_iter().try_for_each(|(p, c)| self.inner.draw_pixel(p, c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plotters::prelude::*;

    /// Columns of a `w`×`h` RGB buffer that hold any ink (a channel below 200).
    fn inked_columns(buf: &[u8], w: usize, h: usize) -> Vec<bool> {
        (0..w).map(|x| (0..h).any(|y| buf[(y * w + x) * 3..(y * w + x) * 3 + 3].iter().any(|&c| c < 200))).collect()
    }

    /// Ink runs (maximal groups of inked columns) in `text` drawn at `size` px.
    fn runs(text: &str, size: u32, rotate: bool) -> usize {
        crate::plots::register_font().unwrap();
        let (w, h) = (120usize, 120usize);
        let mut buf = vec![255u8; w * h * 3];
        {
            let inner = BitMapBackend::with_buffer(&mut buf, (w as u32, h as u32));
            let root = FixedTextBitMap::new(inner, super::super::FONT).unwrap().into_drawing_area();
            let font = (super::super::FONT_FAMILY, size).into_font();
            let font = if rotate { font.transform(FontTransform::Rotate270) } else { font };
            root.draw(&Text::new(text, (20, 100), font)).unwrap();
            root.present().unwrap();
        }
        // Rotated text runs along y: transpose.
        let cols = if rotate {
            let mut t = vec![255u8; w * h * 3];
            for y in 0..h {
                for x in 0..w {
                    t[(x * w + y) * 3..(x * w + y) * 3 + 3].copy_from_slice(&buf[(y * w + x) * 3..(y * w + x) * 3 + 3]);
                }
            }
            inked_columns(&t, w, h)
        } else {
            inked_columns(&buf, w, h)
        };
        cols.windows(2).filter(|p| !p[0] && p[1]).count() + usize::from(cols[0])
    }

    #[test]
    fn c_and_l_stay_two_glyphs_at_label_sizes_upright_and_rotated() {
        // plotters 0.3.7 drew "cl" at 13 and 14 px as one run of ink (it read "d"); each glyph
        // keeps its side bearings here, so a blank column separates them.
        for size in [12, 13, 14, 15, 24] {
            assert_eq!(runs("cl", size, false), 2, "upright at {size} px");
            assert_eq!(runs("cl", size, true), 2, "rotated at {size} px");
        }
    }
}
