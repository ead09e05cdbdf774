//! Line charts to PNG or SVG (chosen by the output's extension), one or more panels
//! stacked vertically, text in an embedded DejaVu Sans so no system fonts are needed.
//! Written under a temporary name and renamed when complete.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::error::{DynamicsError, Result};

/// How a line is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SeriesStyle {
    /// A coloured line with markers.
    #[default]
    Normal,
    /// Grey and dashed: a hook whose autoencoder fails its quality gate, shown so the
    /// reader sees it is there but not as a finding.
    Failing,
    /// Black and dashed: a bound, such as log2 of the number of states.
    Bound,
}

/// One line.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend text ("" for none).
    pub label: String,
    /// (x, y) points in x order; NaN y values are skipped.
    pub points: Vec<(f64, f64)>,
    /// How it is drawn.
    pub style: SeriesStyle,
}

impl Series {
    /// A normal line.
    pub fn new(label: String, points: Vec<(f64, f64)>) -> Self {
        Self { label, points, style: SeriesStyle::Normal }
    }
}

/// One panel.
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    /// Title above the panel.
    pub title: String,
    /// x-axis description.
    pub x_label: String,
    /// y-axis description.
    pub y_label: String,
    /// The lines, drawn in order with colours from a blue-to-red gradient.
    pub series: Vec<Series>,
}

const FONT: &str = "sans-serif";
/// Legend entries beyond this are thinned to every n-th line.
const MAX_LEGEND: usize = 12;

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular())
            .unwrap_or_else(|_| panic!("the embedded DejaVu Sans is a valid font"));
    });
}

fn colour(i: usize, n: usize) -> HSLColor {
    let t = if n <= 1 { 0.0 } else { i as f64 / (n - 1) as f64 };
    HSLColor(0.66 * (1.0 - t), 0.75, 0.42)
}

fn bounds(series: &[Series]) -> ((f64, f64), (f64, f64)) {
    let points = series.iter().flat_map(|s| s.points.iter()).filter(|(x, y)| x.is_finite() && y.is_finite());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in points {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if x0 > x1 {
        return ((0.0, 1.0), (0.0, 1.0));
    }
    let pad = |lo: f64, hi: f64| if hi > lo { (hi - lo) * 0.05 } else { lo.abs().max(1.0) * 0.5 };
    let (px, py) = (pad(x0, x1), pad(y0, y1));
    ((x0 - if x1 > x0 { 0.0 } else { px }, x1 + if x1 > x0 { 0.0 } else { px }), (y0 - py, y1 + py))
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    chart: &LineChart,
) -> std::result::Result<(), String> {
    let ((x0, x1), (y0, y1)) = bounds(&chart.series);
    let mut c = ChartBuilder::on(area)
        .caption(&chart.title, (FONT, 22))
        .margin(14)
        .x_label_area_size(46)
        .y_label_area_size(72)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| e.to_string())?;
    // Whole numbers without a decimal point (layers, positions, k, epochs).
    let tick = |v: &f64| if v.fract() == 0.0 { format!("{v:.0}") } else { format!("{v:.2}") };
    let y_tick = |v: &f64| {
        let a = v.abs();
        if a == 0.0 || (1e-2..1e5).contains(&a) {
            let s = format!("{v:.3}");
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            format!("{v:.1e}")
        }
    };
    c.configure_mesh()
        .x_label_formatter(&tick)
        .y_label_formatter(&y_tick)
        .x_desc(&chart.x_label)
        .y_desc(&chart.y_label)
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(|e| e.to_string())?;
    // Colours go to the normal lines only, so greyed ones do not shift the gradient.
    let n = chart.series.iter().filter(|s| s.style == SeriesStyle::Normal).count();
    let every = n.div_ceil(MAX_LEGEND).max(1);
    let mut labelled = false;
    let mut normal = 0;
    for s in &chart.series {
        let points: Vec<(f64, f64)> =
            s.points.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite()).collect();
        let colour: RGBAColor = match s.style {
            SeriesStyle::Normal => {
                normal += 1;
                colour(normal - 1, n).to_rgba()
            }
            SeriesStyle::Failing => RGBColor(150, 150, 150).to_rgba(),
            SeriesStyle::Bound => BLACK.to_rgba(),
        };
        let style = colour.stroke_width(2);
        let drawn = match s.style {
            SeriesStyle::Normal => c.draw_series(LineSeries::new(points.clone(), style)),
            SeriesStyle::Failing | SeriesStyle::Bound => {
                c.draw_series(DashedLineSeries::new(points.clone(), 8, 5, style))
            }
        }
        .map_err(|e| e.to_string())?;
        let in_legend = s.style != SeriesStyle::Normal || (normal - 1) % every == 0 || normal == n;
        if !s.label.is_empty() && in_legend {
            labelled = true;
            drawn.label(&s.label).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 22, y)], style));
        }
        if points.len() <= 40 && s.style != SeriesStyle::Bound {
            c.draw_series(points.iter().map(|&p| Circle::new(p, 3, colour.filled())))
                .map_err(|e| e.to_string())?;
        }
    }
    if labelled {
        c.configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.5))
            .label_font((FONT, 14))
            .draw()
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn draw_all<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    charts: &[LineChart],
) -> std::result::Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    for (area, chart) in root.split_evenly((charts.len(), 1)).iter().zip(charts) {
        draw_panel(area, chart)?;
    }
    root.present().map_err(|e| e.to_string())
}

/// Draws `charts` stacked to `path` (.png or .svg), 1000 px wide, 560 px per panel.
pub fn draw(charts: &[LineChart], path: &Path) -> Result<()> {
    register_font();
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let size = (1000u32, 560 * charts.len().max(1) as u32);
    if !matches!(ext.as_deref(), Some("png" | "svg")) {
        return Err(DynamicsError::Input(format!(
            "{}: the plot's file name must end in .png or .svg",
            path.display()
        )));
    }
    bae_train::files::write_atomically_with(path, |tmp| {
        let drawn = match ext.as_deref() {
            Some("png") => {
                // Drawn in memory and encoded here: plotters would pick the format from
                // the temporary file's name.
                let mut pixels = vec![0u8; size.0 as usize * size.1 as usize * 3];
                draw_all(BitMapBackend::with_buffer(&mut pixels, size).into_drawing_area(), charts).and_then(
                    |()| {
                        image::save_buffer_with_format(
                            tmp,
                            &pixels,
                            size.0,
                            size.1,
                            image::ColorType::Rgb8,
                            image::ImageFormat::Png,
                        )
                        .map_err(|e| e.to_string())
                    },
                )
            }
            _ => draw_all(SVGBackend::new(tmp, size).into_drawing_area(), charts),
        };
        drawn.map_err(|e| DynamicsError::Input(format!("drawing {}: {e}", path.display())))
    })
}
