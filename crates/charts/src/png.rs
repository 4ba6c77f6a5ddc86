//! A chart as PNG: its SVG rendered by resvg, the text in a font of the
//! system (feature `png`).

use std::path::Path;
use std::sync::Arc;

use resvg::{tiny_skia, usvg};

/// Families tried, in order, for the charts' `sans-serif` text; failing
/// all, the first family found.
const PREFERRED: [&str; 6] = [
    "DejaVu Sans",
    "Liberation Sans",
    "Noto Sans",
    "Arial",
    "Helvetica",
    "FreeSans",
];

/// Why a chart could not be rendered as PNG.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PngError {
    /// No font was found, so the text could not be drawn.
    #[error(
        "no font found to draw the chart's text (looked in {looked_in}); install one \
         (Debian: apt-get install fonts-dejavu-core) or write .svg instead"
    )]
    NoFonts {
        /// Where fonts were looked for.
        looked_in: String,
    },
    /// The SVG could not be read (a bug in the chart).
    #[error("the chart's SVG does not parse: {0}")]
    Svg(String),
    /// The image would be empty or too large to allocate.
    #[error("a {width} × {height} pixel image cannot be made")]
    Size {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// The PNG encoder failed.
    #[error("encoding the PNG: {0}")]
    Encode(String),
}

/// Renders charts as PNG, with the fonts it found once.
///
/// ```no_run
/// let png = charts::png::Rasterizer::with_system_fonts()?
///     .render(&charts::cdf(&charts::Frame::new("TTFB"), "ms", &[]), 2.0)?;
/// std::fs::write("ttfb.png", png)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Rasterizer {
    fonts: Arc<usvg::fontdb::Database>,
    family: String,
}

impl Rasterizer {
    /// With the fonts installed on this system (on Linux the fontconfig
    /// directories: `/usr/share/fonts`, `~/.local/share/fonts` …); fails with
    /// [`PngError::NoFonts`] when there are none, rather than drawing charts
    /// without text.
    pub fn with_system_fonts() -> Result<Rasterizer, PngError> {
        let mut fonts = usvg::fontdb::Database::new();
        fonts.load_system_fonts();
        Self::with_fonts(fonts, "the system's font directories")
    }

    /// With the fonts in `dirs` (searched recursively) only.
    pub fn with_font_dirs(dirs: &[&Path]) -> Result<Rasterizer, PngError> {
        let mut fonts = usvg::fontdb::Database::new();
        for dir in dirs {
            fonts.load_fonts_dir(dir);
        }
        let looked_in = dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        Self::with_fonts(fonts, &looked_in)
    }

    fn with_fonts(
        mut fonts: usvg::fontdb::Database,
        looked_in: &str,
    ) -> Result<Rasterizer, PngError> {
        let families: Vec<&str> = fonts
            .faces()
            .flat_map(|face| face.families.iter().map(|(name, _)| name.as_str()))
            .collect();
        let family = PREFERRED
            .iter()
            .find(|p| families.contains(p))
            .or(families.first())
            .map(|f| (*f).to_owned())
            .ok_or_else(|| PngError::NoFonts {
                looked_in: looked_in.to_owned(),
            })?;
        // Every generic family names the one chosen, so no text falls
        // through to a font that is not there.
        fonts.set_sans_serif_family(family.as_str());
        fonts.set_serif_family(family.as_str());
        fonts.set_monospace_family(family.as_str());
        Ok(Rasterizer {
            fonts: Arc::new(fonts),
            family,
        })
    }

    /// The font family the charts' text is drawn in.
    pub fn family(&self) -> &str {
        &self.family
    }

    /// `svg` as a PNG, `scale` times its own size (2 for sharp text on
    /// high-density screens and in print), on its own opaque background.
    pub fn render(&self, svg: &str, scale: f32) -> Result<Vec<u8>, PngError> {
        let options = usvg::Options {
            font_family: self.family.clone(),
            fontdb: Arc::clone(&self.fonts),
            ..usvg::Options::default()
        };
        let tree = usvg::Tree::from_str(svg, &options).map_err(|e| PngError::Svg(e.to_string()))?;
        let size = tree.size().to_int_size().scale_by(scale);
        let (width, height) = size.map_or((0, 0), |s| (s.width(), s.height()));
        let mut pixmap =
            tiny_skia::Pixmap::new(width, height).ok_or(PngError::Size { width, height })?;
        resvg::render(
            &tree,
            tiny_skia::Transform::from_scale(scale, scale),
            &mut pixmap.as_mut(),
        );
        pixmap
            .encode_png()
            .map_err(|e| PngError::Encode(e.to_string()))
    }
}
