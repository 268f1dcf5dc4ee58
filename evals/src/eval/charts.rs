//! The report's SVG charts, drawn with plotters: the needle heat map per
//! strategy, score against tokens sent, and latency per stage.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use plotters::prelude::*;

use super::summary::{Grid, Group, Summary};

const STRATEGY_COLORS: [(&str, RGBColor); 4] = [
    ("rag", RGBColor(31, 119, 180)),
    ("compress", RGBColor(255, 127, 14)),
    ("full", RGBColor(44, 160, 44)),
    ("auto", RGBColor(148, 103, 189)),
];

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing a chart: {e:?}")
}

/// Draws every chart of `summary` into `dir`; returns the files written.
pub fn draw_all(summary: &Summary, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for grid in &summary.grids {
        let path = dir.join(format!("{}-heatmap-{}.svg", grid.suite, grid.strategy));
        heatmap(grid, &path)?;
        files.push(path);
    }
    let suites: Vec<&Group> = summary.groups.iter().filter(|g| g.kind == "all").collect();
    if !suites.is_empty() {
        let path = dir.join("score-vs-tokens.svg");
        score_vs_tokens(&suites, &path)?;
        files.push(path);
        let path = dir.join("latency.svg");
        latency(&suites, &path)?;
        files.push(path);
    }
    Ok(files)
}

/// The label of a segment's centre (nothing at its edges).
fn label<T>(v: &SegmentValue<usize>, values: &[T], show: impl Fn(&T) -> String) -> String {
    match v {
        SegmentValue::CenterOf(i) => values.get(*i).map_or(String::new(), show),
        _ => String::new(),
    }
}

/// Score from red (0) to green (1).
fn score_color(score: f64) -> RGBColor {
    let s = score.clamp(0.0, 1.0);
    RGBColor(
        (220.0 * (1.0 - s) + 30.0 * s) as u8,
        (60.0 * (1.0 - s) + 160.0 * s) as u8,
        60,
    )
}

fn heatmap(grid: &Grid, path: &Path) -> Result<()> {
    let root =
        SVGBackend::new(path, (640, 120 + 60 * grid.lengths.len() as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let (nx, ny) = (grid.depths.len(), grid.lengths.len());
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "{}: score by length and depth ({})",
                grid.suite, grid.strategy
            ),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d((0..nx).into_segmented(), (0..ny).into_segmented())
        .map_err(err)?;
    let depths = grid.depths.clone();
    let lengths = grid.lengths.clone();
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("needle depth")
        .y_desc("context tokens")
        .x_labels(nx + 1)
        .y_labels(ny + 1)
        .x_label_formatter(&|v| label(v, &depths, |d| format!("{d}%")))
        .y_label_formatter(&|v| label(v, &lengths, |l| l.to_string()))
        .draw()
        .map_err(err)?;
    for (y, row) in grid.cells.iter().enumerate() {
        for (x, cell) in row.iter().enumerate() {
            let fill = cell.map_or(RGBColor(230, 230, 230), score_color);
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [
                        (SegmentValue::Exact(x), SegmentValue::Exact(y)),
                        (SegmentValue::Exact(x + 1), SegmentValue::Exact(y + 1)),
                    ],
                    fill.filled(),
                )))
                .map_err(err)?;
            if let Some(v) = cell {
                chart
                    .draw_series(std::iter::once(Text::new(
                        format!("{:.0}%", v * 100.0),
                        (SegmentValue::CenterOf(x), SegmentValue::CenterOf(y)),
                        ("sans-serif", 14).into_font().color(&WHITE),
                    )))
                    .map_err(err)?;
            }
        }
    }
    root.present().map_err(err)
}

fn score_vs_tokens(groups: &[&Group], path: &Path) -> Result<()> {
    let root = SVGBackend::new(path, (760, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let max_x = groups.iter().map(|g| g.tokens_sent).fold(1.0, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "score against tokens sent (one point per suite)",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..max_x, 0.0..1.05)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("mean prompt tokens sent")
        .y_desc("mean score")
        .draw()
        .map_err(err)?;
    for (strategy, color) in STRATEGY_COLORS {
        let mut points: Vec<(f64, f64, &str)> = groups
            .iter()
            .filter(|g| g.strategy == strategy)
            .map(|g| (g.tokens_sent, g.score, g.suite.as_str()))
            .collect();
        if points.is_empty() {
            continue;
        }
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart
            .draw_series(
                points
                    .iter()
                    .map(|&(x, y, _)| Circle::new((x, y), 5, color.filled())),
            )
            .map_err(err)?
            .label(strategy)
            .legend(move |(x, y)| Circle::new((x + 8, y), 5, color.filled()));
        chart
            .draw_series(points.iter().map(|&(x, y, suite)| {
                Text::new(suite.to_string(), (x, y), ("sans-serif", 12).into_font())
            }))
            .map_err(err)?;
    }
    legend(&mut chart)?;
    root.present().map_err(err)
}

const STAGE_COLORS: [(&str, RGBColor); 6] = [
    ("ingest", RGBColor(140, 86, 75)),
    ("retrieve", RGBColor(31, 119, 180)),
    ("compress", RGBColor(255, 127, 14)),
    ("prefill", RGBColor(44, 160, 44)),
    ("decode", RGBColor(214, 39, 40)),
    ("quote", RGBColor(148, 103, 189)),
];

/// One stacked bar per (suite, strategy): mean measured seconds per stage.
fn latency(groups: &[&Group], path: &Path) -> Result<()> {
    let width = (160 + 70 * groups.len()).max(520) as u32;
    let root = SVGBackend::new(path, (width, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let stage_values = |g: &Group| {
        let s = &g.stages;
        [
            s.ingest, s.retrieve, s.compress, s.prefill, s.decode, s.quote,
        ]
    };
    let max_y = groups
        .iter()
        .map(|g| stage_values(g).iter().sum::<f64>())
        .fold(0.1, f64::max)
        * 1.1;
    let labels: Vec<String> = groups
        .iter()
        .map(|g| format!("{}/{}", g.suite, g.strategy))
        .collect();
    let mut chart = ChartBuilder::on(&root)
        .caption("mean seconds per answer, by stage", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(60)
        .y_label_area_size(50)
        .build_cartesian_2d((0..groups.len()).into_segmented(), 0.0..max_y)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(groups.len() + 1)
        .x_label_formatter(&|v| label(v, &labels, |l| l.clone()))
        .y_desc("seconds")
        .draw()
        .map_err(err)?;
    for (stage_index, (stage, color)) in STAGE_COLORS.iter().enumerate() {
        let bars = groups.iter().enumerate().map(|(x, g)| {
            let values = stage_values(g);
            let below: f64 = values[..stage_index].iter().sum();
            let mut bar = Rectangle::new(
                [
                    (SegmentValue::Exact(x), below),
                    (SegmentValue::Exact(x + 1), below + values[stage_index]),
                ],
                color.filled(),
            );
            bar.set_margin(0, 0, 6, 6);
            bar
        });
        let color = *color;
        chart
            .draw_series(bars)
            .map_err(err)?
            .label(*stage)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    legend(&mut chart)?;
    root.present().map_err(err)
}

fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
) -> Result<()> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(err)
}
