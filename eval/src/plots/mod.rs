//! The evaluation plots, each as PNG and SVG (plotters): the latency CDF per policy, the backlog
//! over time, the chosen split layer and edge share against the measured bandwidth over time,
//! and the energy–latency scatter. Text is laid out with a bundled DejaVu Sans subset through
//! plotters' pure-Rust `ab_glyph` renderer, so no system font library is needed (licence in
//! `eval/assets/LICENSE-DejaVu.txt`); PNG text goes through [`bitmap_text`], which places
//! glyphs correctly where plotters' own text drops their side bearings.
//!
//! Every policy has its own look ([`style::look`]: ten colours, then dashes and marker shapes),
//! rows with identical curves are merged into one "a = b" curve, points are clipped to the
//! frame, and legends sit in a column beside the plot ([`legend`]), not over the data.
//!
//! Time series show the first episode (the runner keeps bounded traces); under common random
//! numbers every policy's first episode has the same bandwidth, so one bandwidth panel serves
//! all policies.

use crate::report::{METRICS, Row};
use crate::runner::ScenarioResult;
use anyhow::{Result, anyhow};
use plotters::coord::combinators::BindKeyPoints;
use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

mod bitmap_text;
mod legend;
pub mod style;

use bitmap_text::FixedTextBitMap;
use legend::Sample;
use style::{Curve, clip, log_ticks, look, merge_identical, tick_label};

/// DejaVu Sans, subset to Latin-1 and the symbols the plots use.
static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans-subset.ttf");
const FONT_FAMILY: &str = "sans-serif";

/// Points per CDF line at most (quantiles of the sorted latencies), to keep SVGs small.
const CDF_POINTS: usize = 400;
const WIDE: (u32, u32) = (1200, 600);
const TALL: (u32, u32) = (1200, 900);

/// Registers the bundled font once per process.
pub fn register_font() -> Result<()> {
    static ONCE: Once = Once::new();
    let mut ok = true;
    ONCE.call_once(|| ok = plotters::style::register_font(FONT_FAMILY, FontStyle::Normal, FONT).is_ok());
    if ok { Ok(()) } else { Err(anyhow!("the bundled plot font does not parse")) }
}

type DrawResult = std::result::Result<(), String>;
type Area<DB> = DrawingArea<DB, Shift>;

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// Draws `$body` (with `$root` bound to the drawing area) into `<dir>/<stem>.png` and
/// `<dir>/<stem>.svg`, and evaluates to the two file names. A macro because the body is
/// generic over the backend, which a closure cannot be.
macro_rules! both {
    ($dir:expr, $stem:expr, $size:expr, |$root:ident| $body:expr) => {{
        let png = $dir.join(format!("{}.png", $stem));
        let svg = $dir.join(format!("{}.svg", $stem));
        {
            let backend = FixedTextBitMap::new(BitMapBackend::new(&png, $size), FONT)
                .map_err(|e| anyhow!("plot {}: the bundled font does not parse: {e}", png.display()))?;
            let area = backend.into_drawing_area();
            let $root = &area;
            let drawn: DrawResult =
                $root.fill(&WHITE).map_err(err).and_then(|_| $body).and_then(|_| $root.present().map_err(err));
            drawn.map_err(|e| anyhow!("plot {}: {e}", png.display()))?;
        }
        {
            let area = SVGBackend::new(&svg, $size).into_drawing_area();
            let $root = &area;
            let drawn: DrawResult =
                $root.fill(&WHITE).map_err(err).and_then(|_| $body).and_then(|_| $root.present().map_err(err));
            drawn.map_err(|e| anyhow!("plot {}: {e}", svg.display()))?;
        }
        vec![format!("{}.png", $stem), format!("{}.svg", $stem)]
    }};
}

/// A padded, non-degenerate range over finite values.
fn range(values: impl Iterator<Item = f64>, pad: f64) -> Option<(f64, f64)> {
    let (lo, hi) =
        values.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)));
    if !lo.is_finite() {
        return None;
    }
    let span = if hi > lo { hi - lo } else { lo.abs().max(1.0) };
    Some((lo - pad * span, hi + pad * span))
}

/// One scenario's plots into `dir` (created); returns the file names.
pub fn write_scenario_plots(s: &ScenarioResult, rows: &[Row<'_>], dir: &Path) -> Result<Vec<String>> {
    register_font()?;
    std::fs::create_dir_all(dir).map_err(|e| anyhow!("cannot create {}: {e}", dir.display()))?;
    let mut files = Vec::new();
    let title = |what: &str| format!("{what} — {}", s.name);

    // Latency CDF: every completed request of every episode and member of a row.
    let cdfs: Vec<(String, Vec<(f64, f64)>)> = rows
        .iter()
        .map(|r| {
            let mut lat: Vec<f64> = r
                .members
                .iter()
                .flat_map(|m| m.requests.iter().filter(|q| !q.record.failed).map(|q| q.record.latency_s))
                .filter(|x| x.is_finite() && *x > 0.0)
                .collect();
            lat.sort_by(f64::total_cmp);
            let n = lat.len();
            let step = n.div_ceil(CDF_POINTS).max(1);
            let mut pts: Vec<(f64, f64)> = (0..n).step_by(step).map(|i| (lat[i], (i + 1) as f64 / n as f64)).collect();
            if let Some(&last) = lat.last() {
                pts.push((last, 1.0));
            }
            (r.display_label(), pts)
        })
        .collect();
    files.extend(both!(dir, "latency_cdf", WIDE, |root| latency_cdf(root, &title("Latency CDF"), &cdfs)));

    // Backlog over time (first traced episode of each row's first member).
    let backlog: Vec<(String, Vec<(f64, f64)>)> =
        rows.iter().map(|r| (r.display_label(), first_trace(r, |t| f64::from(t.backlog)))).collect();
    files.extend(both!(dir, "backlog", WIDE, |root| lines(
        root,
        &title("Backlog over time, episode 0"),
        "slot",
        "backlog (requests)",
        &backlog
    )));

    // Split layer and edge share against the measured bandwidth (and what else drives the
    // choice: cloud load and crossing-failure probability).
    let exo: Vec<ExoPoint> = s
        .runs
        .first()
        .map(|run| {
            run.traces
                .iter()
                .filter(|t| t.episode == 0)
                .map(|t| ExoPoint {
                    slot: t.slot as f64,
                    bandwidth_mbps: t.rate_bps / 1e6,
                    cloud_load: t.cloud_load,
                    failure_probability: t.crossing_failure_probability,
                })
                .collect()
        })
        .unwrap_or_default();
    let split: Vec<(String, Vec<(f64, f64)>)> =
        rows.iter().map(|r| (r.display_label(), first_trace(r, |t| f64::from(t.split_layer)))).collect();
    let share: Vec<(String, Vec<(f64, f64)>)> =
        rows.iter().map(|r| (r.display_label(), first_trace(r, |t| t.edge_share))).collect();
    let split_title = title("Split layer and edge share vs bandwidth, episode 0");
    files.extend(both!(dir, "split_vs_bandwidth", TALL, |root| split_vs_bandwidth(
        root,
        &split_title,
        &exo,
        &split,
        &share
    )));

    // Energy–latency scatter: per-episode points and the row mean.
    let lat_i = METRICS.iter().position(|m| m.key == "latency_mean_s").unwrap_or(0);
    let en_i = METRICS.iter().position(|m| m.key == "energy_per_request_j").unwrap_or(0);
    let scatter: Vec<ScatterRow> = rows
        .iter()
        .map(|r| ScatterRow {
            label: r.display_label(),
            mean: (r.stats[lat_i].mean, r.stats[en_i].mean),
            ci: (r.stats[lat_i].ci95, r.stats[en_i].ci95),
            episodes: r.values[lat_i].iter().copied().zip(r.values[en_i].iter().copied()).collect(),
        })
        .collect();
    files.extend(both!(dir, "energy_latency", WIDE, |root| energy_latency(
        root,
        &title("Energy vs latency"),
        &scatter
    )));
    Ok(files)
}

fn first_trace(r: &Row<'_>, f: impl Fn(&crate::runner::SlotTrace) -> f64) -> Vec<(f64, f64)> {
    r.members
        .first()
        .map(|m| m.traces.iter().filter(|t| t.episode == 0).map(|t| (t.slot as f64, f(t))).collect())
        .unwrap_or_default()
}

fn no_data<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, title: &str) -> DrawResult {
    root.draw(&Text::new(format!("{title}: no data"), (20, 20), (FONT_FAMILY, 20).into_font())).map_err(err)
}

/// Splits `root` (title drawn) into the plot and a legend column sized for `labels`.
fn with_legend<'s, DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    labels: impl Iterator<Item = &'s str>,
) -> std::result::Result<(Area<DB>, Area<DB>), String> {
    let root = root.titled(title, (FONT_FAMILY, 24)).map_err(err)?;
    let w = root.dim_in_pixel().0;
    Ok(root.split_horizontally(w.saturating_sub(legend::width(labels))))
}

/// Draws `points` in policy `look_index`'s look (colour and dash).
fn curve<'a, DB, CT>(chart: &mut ChartContext<'a, DB, CT>, points: Vec<(f64, f64)>, look_index: usize) -> DrawResult
where
    DB: DrawingBackend + 'a,
    CT: CoordTranslate<From = (f64, f64)>,
{
    let l = look(look_index);
    let line = l.color.stroke_width(2);
    match l.dash {
        None => chart.draw_series(LineSeries::new(points, line)).map(|_| ()).map_err(err),
        Some((dash, gap)) => chart.draw_series(DashedLineSeries::new(points, dash, gap, line)).map(|_| ()).map_err(err),
    }
}

fn latency_cdf<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    cdfs: &[(String, Vec<(f64, f64)>)],
) -> DrawResult {
    let all = || cdfs.iter().flat_map(|(_, p)| p.iter().map(|q| q.0));
    let (Some(lo), Some(hi)) = (all().reduce(f64::min), all().reduce(f64::max)) else {
        return no_data(root, title);
    };
    let (lo, hi) = (lo / 1.3, hi * 1.3);
    // Rows with identical latencies (e.g. edge-only and a DP that chose it everywhere) are one
    // curve labelled "a = b" instead of one hiding the other.
    let curves: Vec<Curve> = merge_identical(cdfs).into_iter().filter(|c| !c.points.is_empty()).collect();
    let (plot, side) = with_legend(root, title, curves.iter().map(|c| c.label.as_str()))?;
    let mut chart = ChartBuilder::on(&plot)
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(55)
        .build_cartesian_2d((lo..hi).log_scale().with_key_points(log_ticks(lo, hi, 10)), 0.0..1.0)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("latency (s, log scale)")
        .y_desc("fraction of requests ≤ x")
        .x_label_formatter(&|v| tick_label(*v))
        .label_style((FONT_FAMILY, 15))
        .draw()
        .map_err(err)?;
    for c in &curves {
        curve(&mut chart, clip(&c.points, (lo, hi), (0.0, 1.0)), c.look)?;
    }
    legend::draw(&side, &curves.iter().map(|c| (c.label.clone(), Sample::Line(c.look))).collect::<Vec<_>>(), 15)
}

fn lines<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> DrawResult {
    let (Some(x), Some(y)) = (
        range(series.iter().flat_map(|(_, p)| p.iter().map(|q| q.0)), 0.0),
        range(series.iter().flat_map(|(_, p)| p.iter().map(|q| q.1)).chain([0.0]), 0.05),
    ) else {
        return no_data(root, title);
    };
    let y = (y.0.max(0.0), y.1);
    let curves = merge_identical(series);
    let (plot, side) = with_legend(root, title, curves.iter().map(|c| c.label.as_str()))?;
    let mut chart = ChartBuilder::on(&plot)
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(x.0..x.1, y.0..y.1)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(&slot_label)
        .label_style((FONT_FAMILY, 15))
        .draw()
        .map_err(err)?;
    for c in &curves {
        curve(&mut chart, clip(&c.points, x, y), c.look)?;
    }
    legend::draw(&side, &curves.iter().map(|c| (c.label.clone(), Sample::Line(c.look))).collect::<Vec<_>>(), 15)
}

/// Horizontal steps through `pts` (a slot's value holds until the next slot).
fn steps(pts: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(2 * pts.len());
    for (i, &(x, y)) in pts.iter().enumerate() {
        out.push((x, y));
        out.push((pts.get(i + 1).map_or(x + 1.0, |n| n.0), y));
    }
    out
}

/// One slot of the first episode's exogenous conditions.
struct ExoPoint {
    slot: f64,
    bandwidth_mbps: f64,
    cloud_load: f64,
    failure_probability: f64,
}

/// Vertical offset between policies in the split and share panels (layers; share fraction),
/// so identical choices stay visible instead of hiding each other.
const SPLIT_OFFSET_LAYERS: f64 = 0.35;
const SHARE_OFFSET: f64 = 0.012;
/// Width of the bandwidth panel's right axis (cloud load, failure probability).
const RIGHT_AXIS: u32 = 70;

fn slot_label(x: &f64) -> String {
    format!("{x:.0}")
}

fn split_vs_bandwidth<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    exo: &[ExoPoint],
    split: &[(String, Vec<(f64, f64)>)],
    share: &[(String, Vec<(f64, f64)>)],
) -> DrawResult {
    let Some(x) = range(exo.iter().map(|p| p.slot).chain(split.iter().flat_map(|(_, p)| p.iter().map(|q| q.0))), 0.0)
    else {
        return no_data(root, title);
    };
    let x = (x.0, x.1 + 1.0);
    let exo_legend = ["bandwidth", "cloud load", "P(crossing fails)"];
    let (plot, side) = with_legend(root, title, split.iter().map(|(l, _)| l.as_str()).chain(exo_legend))?;
    let panels = plot.split_evenly((3, 1));
    let sides = side.split_evenly((3, 1));
    // Bandwidth on a log scale (regimes differ by an order of magnitude); cloud load and the
    // crossing-failure probability on the right axis.
    let (b_lo, b_hi) = exo
        .iter()
        .map(|p| p.bandwidth_mbps)
        .filter(|v| *v > 0.0)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)));
    let load = RGBColor(150, 150, 150);
    let fail = RGBColor(214, 39, 40).mix(0.6);
    if b_lo.is_finite() {
        let (b_lo, b_hi) = (b_lo / 1.5, b_hi * 1.5);
        let mut chart = ChartBuilder::on(&panels[0])
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(70)
            .right_y_label_area_size(RIGHT_AXIS)
            .build_cartesian_2d(x.0..x.1, (b_lo..b_hi).log_scale().with_key_points(log_ticks(b_lo, b_hi, 8)))
            .map_err(err)?
            .set_secondary_coord(x.0..x.1, 0.0..1.05);
        chart
            .configure_mesh()
            .y_desc("bandwidth (Mbit/s)")
            .y_label_formatter(&|v| tick_label(*v))
            .x_label_formatter(&slot_label)
            .label_style((FONT_FAMILY, 14))
            .draw()
            .map_err(err)?;
        chart
            .configure_secondary_axes()
            .y_desc("cloud load, P(crossing fails)")
            .label_style((FONT_FAMILY, 14))
            .draw()
            .map_err(err)?;
        let pts = |f: fn(&ExoPoint) -> f64| exo.iter().map(|p| (p.slot, f(p))).collect::<Vec<_>>();
        // A zero rate (outage) has no place on a log axis: it is drawn at the bottom.
        let bandwidth: Vec<(f64, f64)> = exo.iter().map(|p| (p.slot, p.bandwidth_mbps.max(b_lo))).collect();
        let unit = (0.0, 1.05);
        chart
            .draw_secondary_series(LineSeries::new(clip(&steps(&pts(|p| p.cloud_load)), x, unit), load.stroke_width(1)))
            .map_err(err)?;
        chart
            .draw_secondary_series(LineSeries::new(
                clip(&steps(&pts(|p| p.failure_probability)), x, unit),
                fail.stroke_width(1),
            ))
            .map_err(err)?;
        // Bandwidth last, on top of the lighter lines.
        chart
            .draw_series(LineSeries::new(clip(&steps(&bandwidth), x, (b_lo, b_hi)), BLACK.stroke_width(2)))
            .map_err(err)?;
        let entries = [
            ("bandwidth".to_string(), Sample::Thin(BLACK, 2)),
            ("cloud load".to_string(), Sample::Thin(load, 1)),
            ("P(crossing fails)".to_string(), Sample::Thin(RGBColor(214, 39, 40), 1)),
        ];
        legend::draw(&sides[0], &entries, 10)?;
    }
    for (k, series, y_desc, offset) in [
        (1, split, "split layer (edge layers)", SPLIT_OFFSET_LAYERS),
        (2, share, "edge share of compute", SHARE_OFFSET),
    ] {
        let n = series.len() as f64;
        let y = range(series.iter().flat_map(|(_, p)| p.iter().map(|q| q.1)).chain([0.0]), 0.08).unwrap_or((0.0, 1.0));
        let y = (y.0.max(-0.05), y.1 + offset * n);
        // The right margin matches the bandwidth panel's right axis, so the slots line up.
        let mut chart = ChartBuilder::on(&panels[k])
            .margin(10)
            .margin_right(10 + RIGHT_AXIS)
            .x_label_area_size(35)
            .y_label_area_size(70)
            .build_cartesian_2d(x.0..x.1, y.0..y.1)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(if k == 2 { "slot" } else { "" })
            .y_desc(y_desc)
            .x_label_formatter(&slot_label)
            .label_style((FONT_FAMILY, 14))
            .draw()
            .map_err(err)?;
        for (i, (_, pts)) in series.iter().enumerate() {
            let shifted: Vec<(f64, f64)> = pts.iter().map(|&(s, v)| (s, v + offset * i as f64)).collect();
            curve(&mut chart, clip(&steps(&shifted), x, y), i)?;
        }
        let note = format!("policy i drawn {offset}·i higher so equal choices stay visible");
        panels[k]
            .draw(&Text::new(note, (80, 12), (FONT_FAMILY, 12).into_font().color(&RGBColor(90, 90, 90))))
            .map_err(err)?;
    }
    // One legend for both policy panels, beside them.
    let entries: Vec<(String, Sample)> =
        split.iter().enumerate().map(|(i, (l, _))| (l.clone(), Sample::Line(i))).collect();
    let below = side.split_vertically(side.dim_in_pixel().1 / 3).1;
    legend::draw(&below, &entries, 10)?;
    let _ = sides;
    Ok(())
}

struct ScatterRow {
    label: String,
    mean: (f64, f64),
    ci: (f64, f64),
    episodes: Vec<(f64, f64)>,
}

fn energy_latency<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, title: &str, rows: &[ScatterRow]) -> DrawResult {
    let xs = || rows.iter().flat_map(|r| r.episodes.iter().map(|p| p.0).chain([r.mean.0]));
    let ys = || rows.iter().flat_map(|r| r.episodes.iter().map(|p| p.1).chain([r.mean.1]));
    let (Some(x), Some(y)) = (range(xs().chain([0.0]), 0.08), range(ys().chain([0.0]), 0.08)) else {
        return no_data(root, title);
    };
    let (x, y) = ((x.0.max(0.0), x.1), (y.0.max(0.0), y.1));
    let (plot, side) = with_legend(root, title, rows.iter().map(|r| r.label.as_str()))?;
    let mut chart = ChartBuilder::on(&plot)
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(x.0..x.1, y.0..y.1)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("mean latency (s)")
        .y_desc("edge energy per request (J)")
        .label_style((FONT_FAMILY, 15))
        .draw()
        .map_err(err)?;
    // Rows whose points lie within 3 % of the axes of each other share one label
    // ("edge-only = splitllm-dp"), so coinciding rows stay readable.
    let near = |a: (f64, f64), b: (f64, f64)| {
        ((a.0 - b.0) / (x.1 - x.0)).abs() < 0.03 && ((a.1 - b.1) / (y.1 - y.0)).abs() < 0.03
    };
    let mut labels: Vec<((f64, f64), String)> = Vec::new();
    let mut entries = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        if !(r.mean.0.is_finite() && r.mean.1.is_finite()) {
            continue;
        }
        let c = look(i).color;
        let eps: Vec<(f64, f64)> = r.episodes.iter().copied().filter(|p| p.0.is_finite() && p.1.is_finite()).collect();
        chart
            .draw_series(clip(&eps, x, y).into_iter().map(|p| Circle::new(p, 3, c.mix(0.35).filled())))
            .map_err(err)?;
        // 95 % intervals over episodes as a cross, clipped to the frame.
        let (m, h) = (r.mean, (r.ci.0.max(0.0), r.ci.1.max(0.0)));
        if h.0.is_finite() && h.1.is_finite() {
            let horizontal = clip(&[(m.0 - h.0, m.1), (m.0 + h.0, m.1)], x, y);
            let vertical = clip(&[(m.0, m.1 - h.1), (m.0, m.1 + h.1)], x, y);
            chart
                .draw_series([
                    PathElement::new(horizontal, c.stroke_width(2)),
                    PathElement::new(vertical, c.stroke_width(2)),
                ])
                .map_err(err)?;
        }
        let c = c.filled();
        let r7 = [(-7, -7), (7, 7)];
        match style::pass(i) % 4 {
            0 => chart.draw_series([EmptyElement::at(m) + Circle::new((0, 0), 7, c)]).map(|_| ()),
            1 => chart.draw_series([EmptyElement::at(m) + TriangleMarker::new((0, 0), 9, c)]).map(|_| ()),
            2 => chart.draw_series([EmptyElement::at(m) + Rectangle::new(r7, c)]).map(|_| ()),
            _ => chart
                .draw_series([EmptyElement::at(m) + Cross::new((0, 0), 7, look(i).color.stroke_width(3))])
                .map(|_| ()),
        }
        .map_err(err)?;
        entries.push((r.label.clone(), Sample::Marker(i)));
        match labels.iter_mut().find(|(p, _)| near(*p, m)) {
            Some((_, text)) => *text = format!("{text} = {}", r.label),
            None => labels.push((m, r.label.clone())),
        }
    }
    chart
        .draw_series(
            labels
                .into_iter()
                .map(|(p, text)| Text::new(format!("  {text}"), p, (FONT_FAMILY, 15).into_font().color(&BLACK))),
        )
        .map_err(err)?;
    legend::draw(&side, &entries, 15)
}
