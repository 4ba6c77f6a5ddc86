//! Charts rendered as PNG (feature `png`): size, series drawn in their
//! colours, text drawn in a system font, and a clear error without fonts.
#![cfg(feature = "png")]
#![allow(clippy::unwrap_used)]

use charts::png::{PngError, Rasterizer};
use charts::CdfSeries;

/// An RGBA image: width, height, pixels.
struct Image {
    width: u32,
    height: u32,
    rgba: Vec<u8>,
}

impl Image {
    fn decode(bytes: &[u8]) -> Image {
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "PNG signature");
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .unwrap();
        let mut rgba = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut rgba).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgba);
        Image {
            width: info.width,
            height: info.height,
            rgba,
        }
    }

    /// The pixels of the rectangle `x0..x1` × `y0..y1`.
    fn pixels(&self, x0: u32, x1: u32, y0: u32, y1: u32) -> impl Iterator<Item = [u8; 4]> + '_ {
        (y0..y1).flat_map(move |y| {
            (x0..x1).map(move |x| {
                let i = ((y * self.width + x) * 4) as usize;
                [
                    self.rgba[i],
                    self.rgba[i + 1],
                    self.rgba[i + 2],
                    self.rgba[i + 3],
                ]
            })
        })
    }
}

fn chart(title: &str) -> String {
    charts::cdf(
        &charts::Frame::new(title),
        "ms",
        &[
            CdfSeries {
                name: "IR".into(),
                points: vec![(100.0, 0.25), (200.0, 0.5), (400.0, 1.0)],
            },
            CdfSeries {
                name: "DE".into(),
                points: vec![(50.0, 0.5), (90.0, 1.0)],
            },
        ],
    )
}

/// Saturated: a series colour, not the white background, grey grid or
/// black text.
fn coloured([r, g, b, _]: [u8; 4]) -> bool {
    let (max, min) = (r.max(g).max(b), r.min(g).min(b));
    max - min > 80
}

fn dark([r, g, b, _]: [u8; 4]) -> bool {
    r.max(g).max(b) < 100
}

#[test]
fn a_chart_renders_at_its_scale_with_series_and_text() {
    let r = Rasterizer::with_system_fonts().unwrap();
    let image = Image::decode(&r.render(&chart("Time to first byte"), 2.0).unwrap());
    assert_eq!((image.width, image.height), (1520, 840));
    assert!(
        image
            .pixels(0, 10, 0, 10)
            .all(|p| p == [255, 255, 255, 255]),
        "opaque white background"
    );
    // The plot area (70..590 × 40..370 at scale 1) holds the series.
    assert!(
        image
            .pixels(140, 1180, 80, 740)
            .filter(|&p| coloured(p))
            .count()
            > 500
    );

    // The title (at x 70, baseline y 24) is drawn: dark pixels where an
    // untitled chart has none.
    let title_area = |image: &Image| image.pixels(140, 600, 16, 56).filter(|&p| dark(p)).count();
    let untitled = Image::decode(&r.render(&chart(""), 2.0).unwrap());
    assert_eq!(title_area(&untitled), 0);
    assert!(
        title_area(&image) > 200,
        "the title's text is drawn in {}",
        r.family()
    );
}

#[test]
fn without_fonts_it_says_so_rather_than_dropping_the_text() {
    let empty = tempfile::tempdir().unwrap();
    let err = Rasterizer::with_font_dirs(&[empty.path()]).unwrap_err();
    assert!(matches!(err, PngError::NoFonts { .. }));
    let message = err.to_string();
    assert!(
        message.contains(&empty.path().display().to_string())
            && message.contains("fonts-dejavu-core"),
        "{message}"
    );
}
