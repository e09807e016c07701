//! How the plots tell policies apart and keep every line inside its frame: a colour and dash per
//! policy, rows whose curves coincide merged into one labelled curve, points clipped to the
//! chart's range, and tick positions for log axes.

use plotters::style::RGBColor;

/// Tableau 10: distinguishable, colour-blind friendlier than plotters' default palette.
const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Dash patterns (dash, gap in pixels) for each pass through the palette: solid, dashed,
/// dotted, dash-dot-like. With ten colours this tells 40 policies apart.
const DASHES: [Option<(u32, u32)>; 4] = [None, Some((10, 6)), Some((3, 4)), Some((16, 4))];

/// How policy `i` is drawn: its colour, and its dash (None: solid).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Look {
    pub color: RGBColor,
    pub dash: Option<(u32, u32)>,
}

/// Which pass through the palette policy `i` is in (0 for the first ten).
pub fn pass(i: usize) -> usize {
    i / COLORS.len()
}

/// Policies that compare equal in [`look`] are drawn identically.
pub fn look(i: usize) -> Look {
    Look { color: COLORS[i % COLORS.len()], dash: DASHES[pass(i) % DASHES.len()] }
}

/// How many policies get distinct looks.
pub const DISTINCT_LOOKS: usize = COLORS.len() * DASHES.len();

/// One curve to draw: its label (several merged rows join theirs with " = "), its points and
/// the index of its look (the first merged row's).
#[derive(Clone, Debug, PartialEq)]
pub struct Curve {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub look: usize,
}

/// Rows whose points are identical would hide each other while each keeps a legend entry: they
/// become one curve labelled "a = b". Order and looks follow the first row of each group.
pub fn merge_identical(series: &[(String, Vec<(f64, f64)>)]) -> Vec<Curve> {
    let mut out: Vec<Curve> = Vec::new();
    for (i, (label, points)) in series.iter().enumerate() {
        match out.iter_mut().find(|c| !points.is_empty() && c.points == *points) {
            Some(c) => c.label = format!("{} = {label}", c.label),
            None => out.push(Curve { label: label.clone(), points: points.clone(), look: i }),
        }
    }
    out
}

/// The points of `pts` that a chart over `x` × `y` can draw: non-finite points are dropped (a
/// line to them would leave the frame: plotters does not clip) and the rest clamped into range.
pub fn clip(pts: &[(f64, f64)], x: (f64, f64), y: (f64, f64)) -> Vec<(f64, f64)> {
    pts.iter()
        .filter(|p| p.0.is_finite() && p.1.is_finite())
        .map(|&(a, b)| (a.clamp(x.0.min(x.1), x.1.max(x.0)), b.clamp(y.0.min(y.1), y.1.max(y.0))))
        .collect()
}

/// Tick positions for a log axis over `lo..hi` (both > 0): 1-2-5 multiples of each decade,
/// thinned to at most `max` and at least two ticks where the range allows (plotters' own log
/// axis labels only powers of ten: one label on a 2–40 Mbit/s axis).
pub fn log_ticks(lo: f64, hi: f64, max: usize) -> Vec<f64> {
    if !(lo > 0.0 && hi > lo && lo.is_finite() && hi.is_finite()) {
        return Vec::new();
    }
    let max = max.max(2);
    for mantissas in [&[1.0, 2.0, 5.0][..], &[1.0, 3.0][..], &[1.0][..]] {
        let mut ticks = Vec::new();
        let mut decade = 10f64.powf(lo.log10().floor());
        while decade <= hi {
            for m in mantissas {
                let t = m * decade;
                if t >= lo * (1.0 - 1e-9) && t <= hi * (1.0 + 1e-9) {
                    ticks.push(t);
                }
            }
            decade *= 10.0;
        }
        if ticks.len() < 2 {
            // A range inside one 1-2-5 step: label its ends, rounded.
            return vec![round_sig(lo), round_sig(hi)];
        }
        if ticks.len() <= max {
            return ticks;
        }
    }
    // More than `max` decades: every k-th power of ten.
    let (a, b) = (lo.log10().ceil() as i32, hi.log10().floor() as i32);
    let k = ((b - a + 1) as usize).div_ceil(max.max(2)).max(1);
    (a..=b).step_by(k).map(|e| 10f64.powi(e)).collect()
}

/// `v` rounded to two significant digits.
fn round_sig(v: f64) -> f64 {
    // Divide by an exact power of ten rather than multiply by an inexact one (0.01).
    let e = v.abs().log10().floor() as i32 - 1;
    if e < 0 {
        let k = 10f64.powi(-e);
        (v * k).round() / k
    } else {
        let k = 10f64.powi(e);
        (v / k).round() * k
    }
}

/// A tick label: up to three significant digits, no trailing zeros.
pub fn tick_label(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let digits = (2 - v.abs().log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.digits$}");
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_are_distinct_for_forty_policies_so_twelve_never_share_one() {
        for i in 0..DISTINCT_LOOKS {
            for j in 0..i {
                assert_ne!(look(i), look(j), "policies {j} and {i}");
            }
        }
        assert_eq!(look(0).dash, None);
        assert_eq!(look(10).color, look(0).color);
        assert_ne!(look(10).dash, None);
    }

    #[test]
    fn identical_curves_merge_into_one_labelled_curve() {
        let a = vec![(0.0, 1.0), (1.0, 2.0)];
        let b = vec![(0.0, 1.0), (1.0, 3.0)];
        let series = vec![
            ("edge-only".to_string(), a.clone()),
            ("cloud-only".to_string(), b.clone()),
            ("splitllm-dp".to_string(), a.clone()),
            ("empty".to_string(), vec![]),
            ("empty2".to_string(), vec![]),
        ];
        let curves = merge_identical(&series);
        let labels: Vec<&str> = curves.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(labels, ["edge-only = splitllm-dp", "cloud-only", "empty", "empty2"]);
        assert_eq!(curves.iter().map(|c| c.look).collect::<Vec<_>>(), [0, 1, 3, 4]);
    }

    #[test]
    fn clip_drops_non_finite_points_and_clamps_the_rest() {
        let pts = [(0.0, 1.0), (1.0, f64::INFINITY), (2.0, f64::NAN), (3.0, 99.0), (-1.0, -5.0)];
        assert_eq!(clip(&pts, (0.0, 2.0), (0.0, 10.0)), vec![(0.0, 1.0), (2.0, 10.0), (0.0, 0.0)]);
    }

    #[test]
    fn log_ticks_label_more_than_one_point_on_a_sub_decade_axis() {
        assert_eq!(log_ticks(1.3, 60.0, 8), vec![2.0, 5.0, 10.0, 20.0, 50.0]);
        assert_eq!(log_ticks(0.9, 1.1, 8), vec![0.9, 1.1]);
        assert_eq!(log_ticks(0.5, 5000.0, 8), vec![1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0]);
        assert_eq!(log_ticks(1e-3, 1e6, 4), vec![1e-3, 1e0, 1e3, 1e6]);
        assert!(log_ticks(0.0, 1.0, 8).is_empty());
    }

    #[test]
    fn tick_labels_have_three_significant_digits_at_most() {
        assert_eq!(tick_label(2.0), "2");
        assert_eq!(tick_label(0.5), "0.5");
        assert_eq!(tick_label(12.5), "12.5");
        assert_eq!(tick_label(1000.0), "1000");
        assert_eq!(tick_label(0.0123), "0.0123");
    }
}
