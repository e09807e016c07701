//! Legends drawn in a column beside the plot rather than inside its frame, where they hid data
//! (plotters' series labels can only sit inside the plotting area).

use super::style::{look, pass};
use super::{DrawResult, FONT_FAMILY, err};
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

/// What a legend entry shows before its label.
#[derive(Clone, Copy, Debug)]
pub enum Sample {
    /// Policy `look`'s line (colour and dash).
    Line(usize),
    /// A plain line of a colour and width (exogenous series).
    Thin(RGBColor, u32),
    /// Policy `look`'s scatter marker.
    Marker(usize),
}

/// Width in pixels of a legend column for `labels` at 14 px (about 7.5 px a character, plus
/// the sample and padding), bounded so the plot keeps most of the image.
pub fn width<'s>(labels: impl Iterator<Item = &'s str>) -> u32 {
    let chars = labels.map(|l| l.chars().count()).max().unwrap_or(0) as u32;
    (chars * 15 / 2 + 56).clamp(120, 440)
}

/// Draws `entries` top-down in `area`, starting `top` pixels from its top.
pub fn draw<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, entries: &[(String, Sample)], top: i32) -> DrawResult {
    const ROW: i32 = 19;
    for (k, (label, sample)) in entries.iter().enumerate() {
        let y = top + ROW * k as i32 + ROW / 2;
        let (x0, x1): (i32, i32) = (6, 34);
        match *sample {
            Sample::Line(i) => {
                let l = look(i);
                let (dash, gap) = l.dash.unwrap_or(((x1 - x0) as u32, 0));
                area.draw(&DashedPathElement::new(vec![(x0, y), (x1, y)], dash, gap, l.color.stroke_width(2)))
                    .map_err(err)?;
            }
            Sample::Thin(c, w) => {
                area.draw(&PathElement::new(vec![(x0, y), (x1, y)], c.stroke_width(w))).map_err(err)?
            }
            Sample::Marker(i) => marker(area, ((x0 + x1) / 2, y), i, 6)?,
        }
        area.draw(&Text::new(label.as_str(), (x1 + 8, y - 8), (FONT_FAMILY, 14).into_font())).map_err(err)?;
    }
    Ok(())
}

/// Policy `i`'s marker at a pixel: the shape changes with each pass through the palette
/// (circle, triangle, square, cross), as the line dash does.
pub fn marker<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, at: (i32, i32), i: usize, r: i32) -> DrawResult {
    let c = look(i).color;
    match pass(i) % 4 {
        0 => area.draw(&Circle::new(at, r, c.filled())),
        1 => area.draw(&TriangleMarker::new(at, r + 2, c.filled())),
        2 => area.draw(&Rectangle::new([(at.0 - r, at.1 - r), (at.0 + r, at.1 + r)], c.filled())),
        _ => area.draw(&Cross::new(at, r, c.stroke_width(3))),
    }
    .map_err(err)
}
