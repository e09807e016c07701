//! The evaluation plots, each as PNG and SVG (plotters): the latency CDF per policy, the backlog
//! over time, the chosen split layer and edge share against the measured bandwidth over time,
//! and the energy–latency scatter. Text is laid out with a bundled DejaVu Sans subset through
//! plotters' pure-Rust `ab_glyph` renderer, so no system font library is needed (licence in
//! `eval/assets/LICENSE-DejaVu.txt`).
//!
//! Time series show the first episode (the runner keeps bounded traces); under common random
//! numbers every policy's first episode has the same bandwidth, so one bandwidth panel serves
//! all policies.

use crate::report::{METRICS, Row};
use crate::runner::ScenarioResult;
use anyhow::{Result, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

/// DejaVu Sans, subset to Latin-1 and the symbols the plots use.
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans-subset.ttf");
const FONT_FAMILY: &str = "sans-serif";

/// Points per CDF line at most (quantiles of the sorted latencies), to keep SVGs small.
const CDF_POINTS: usize = 400;
const WIDE: (u32, u32) = (1000, 600);
const TALL: (u32, u32) = (1000, 900);

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

fn color(i: usize) -> RGBColor {
    COLORS[i % COLORS.len()]
}

/// Registers the bundled font once per process.
pub fn register_font() -> Result<()> {
    static ONCE: Once = Once::new();
    let mut ok = true;
    ONCE.call_once(|| ok = plotters::style::register_font(FONT_FAMILY, FontStyle::Normal, FONT).is_ok());
    if ok { Ok(()) } else { Err(anyhow!("the bundled plot font does not parse")) }
}

type DrawResult = std::result::Result<(), String>;

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
            let area = BitMapBackend::new(&png, $size).into_drawing_area();
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
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT_FAMILY, 24))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(55)
        .build_cartesian_2d((lo..hi).log_scale(), 0.0..1.0)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("latency (s, log scale)")
        .y_desc("fraction of requests ≤ x")
        .label_style((FONT_FAMILY, 15))
        .draw()
        .map_err(err)?;
    for (i, (label, pts)) in cdfs.iter().enumerate() {
        if pts.is_empty() {
            continue;
        }
        let c = color(i);
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2)))
            .map_err(err)?
            .label(label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font((FONT_FAMILY, 15))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)
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
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT_FAMILY, 24))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(x.0..x.1, y.0.max(0.0)..y.1)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(&slot_label)
        .label_style((FONT_FAMILY, 15))
        .draw()
        .map_err(err)?;
    for (i, (label, pts)) in series.iter().enumerate() {
        let c = color(i);
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2)))
            .map_err(err)?
            .label(label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FONT_FAMILY, 15))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)
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
    let root = root.titled(title, (FONT_FAMILY, 24)).map_err(err)?;
    let panels = root.split_evenly((3, 1));
    // Bandwidth on a log scale (regimes differ by an order of magnitude); cloud load and the
    // crossing-failure probability on the right axis.
    let (b_lo, b_hi) = exo
        .iter()
        .map(|p| p.bandwidth_mbps)
        .filter(|v| *v > 0.0)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)));
    if b_lo.is_finite() {
        let mut chart = ChartBuilder::on(&panels[0])
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(70)
            .right_y_label_area_size(70)
            .build_cartesian_2d(x.0..x.1, (b_lo / 1.5..b_hi * 1.5).log_scale())
            .map_err(err)?
            .set_secondary_coord(x.0..x.1, 0.0..1.05);
        chart
            .configure_mesh()
            .y_desc("bandwidth (Mbit/s)")
            .y_labels(6)
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
        let floor = b_lo / 1.5;
        let bandwidth: Vec<(f64, f64)> = exo.iter().map(|p| (p.slot, p.bandwidth_mbps.max(floor))).collect();
        let load = RGBColor(150, 150, 150);
        chart
            .draw_secondary_series(LineSeries::new(steps(&pts(|p| p.cloud_load)), load.stroke_width(1)))
            .map_err(err)?
            .label("cloud load")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], load.stroke_width(1)));
        let fail = RGBColor(214, 39, 40);
        chart
            .draw_secondary_series(LineSeries::new(
                steps(&pts(|p| p.failure_probability)),
                fail.mix(0.6).stroke_width(1),
            ))
            .map_err(err)?
            .label("P(crossing fails)")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], fail.mix(0.6).stroke_width(1)));
        // Bandwidth last, on top of the lighter lines.
        chart
            .draw_series(LineSeries::new(steps(&bandwidth), BLACK.stroke_width(2)))
            .map_err(err)?
            .label("bandwidth")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(2)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerLeft)
            .label_font((FONT_FAMILY, 13))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
    }
    for (panel, series, y_desc, offset, legend) in [
        (&panels[1], split, "split layer (edge layers)", SPLIT_OFFSET_LAYERS, true),
        (&panels[2], share, "edge share of compute", SHARE_OFFSET, false),
    ] {
        let n = series.len() as f64;
        let y = range(series.iter().flat_map(|(_, p)| p.iter().map(|q| q.1)).chain([0.0]), 0.08).unwrap_or((0.0, 1.0));
        // The right margin matches the bandwidth panel's right axis, so the slots line up.
        let mut chart = ChartBuilder::on(panel)
            .margin(10)
            .margin_right(80)
            .x_label_area_size(35)
            .y_label_area_size(70)
            .build_cartesian_2d(x.0..x.1, y.0.max(-0.05)..y.1 + offset * n)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(if legend { "" } else { "slot" })
            .y_desc(y_desc)
            .x_label_formatter(&slot_label)
            .label_style((FONT_FAMILY, 14))
            .draw()
            .map_err(err)?;
        for (i, (label, pts)) in series.iter().enumerate() {
            let c = color(i);
            let shifted: Vec<(f64, f64)> = pts.iter().map(|&(s, v)| (s, v + offset * i as f64)).collect();
            let drawn = chart.draw_series(LineSeries::new(steps(&shifted), c.stroke_width(2))).map_err(err)?;
            if legend {
                drawn
                    .label(label.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
            }
        }
        if legend {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .label_font((FONT_FAMILY, 13))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()
                .map_err(err)?;
        }
        let note = format!("policy i drawn {offset}·i higher so equal choices stay visible");
        panel
            .draw(&Text::new(note, (80, 12), (FONT_FAMILY, 12).into_font().color(&RGBColor(90, 90, 90))))
            .map_err(err)?;
    }
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
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT_FAMILY, 24))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(x.0.max(0.0)..x.1, y.0.max(0.0)..y.1)
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
    for (i, r) in rows.iter().enumerate() {
        if !(r.mean.0.is_finite() && r.mean.1.is_finite()) {
            continue;
        }
        let c = color(i);
        let eps: Vec<(f64, f64)> = r.episodes.iter().copied().filter(|p| p.0.is_finite() && p.1.is_finite()).collect();
        chart.draw_series(eps.iter().map(|&p| Circle::new(p, 3, c.mix(0.35).filled()))).map_err(err)?;
        // 95 % intervals over episodes as a cross.
        let (m, h) = (r.mean, (r.ci.0.max(0.0), r.ci.1.max(0.0)));
        if h.0.is_finite() && h.1.is_finite() {
            chart
                .draw_series([
                    PathElement::new(vec![(m.0 - h.0, m.1), (m.0 + h.0, m.1)], c.stroke_width(2)),
                    PathElement::new(vec![(m.0, m.1 - h.1), (m.0, m.1 + h.1)], c.stroke_width(2)),
                ])
                .map_err(err)?;
        }
        chart
            .draw_series([Circle::new(m, 7, c.filled())])
            .map_err(err)?
            .label(r.label.as_str())
            .legend(move |(x, y)| Circle::new((x + 10, y), 6, c.filled()));
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
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FONT_FAMILY, 15))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)
}
