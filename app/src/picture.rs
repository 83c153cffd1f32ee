//! Small pictures drawn on the server as SVG (no chart library in the wasm bundle, readable
//! without JavaScript): a stacked bar with a legend in words (and links) so that colour never
//! carries the meaning alone.

use leptos::prelude::*;

/// One part of a stacked bar.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// What the part counts, in the reader's language ("Ready").
    pub label: String,
    pub count: u64,
    /// The CSS class that colours it (`part-ok`, `part-bad`...).
    pub class: &'static str,
    /// Where a click on it leads (the filtered list), if anywhere.
    pub href: Option<String>,
}

/// The x offset and width (in 0..100) of each part, in order; empty parts get none.
pub fn layout(parts: &[Part]) -> Vec<(f64, f64)> {
    let total: u64 = parts.iter().map(|p| p.count).sum();
    let mut x = 0.0;
    parts
        .iter()
        .map(|p| {
            #[allow(clippy::cast_precision_loss)]
            let w = if total == 0 {
                0.0
            } else {
                p.count as f64 * 100.0 / total as f64
            };
            let at = (x, w);
            x += w;
            at
        })
        .collect()
}

/// A stacked bar of `parts` (named `title` for screen readers) and its legend.
#[component]
pub fn StackedBar(
    parts: Vec<Part>,
    #[prop(into)] title: String,
    #[prop(optional, into)] testid: Option<String>,
) -> impl IntoView {
    let title = Some(title);
    let geometry = layout(&parts);
    let rects = parts
        .iter()
        .zip(&geometry)
        .filter(|(p, _)| p.count > 0)
        .map(|(p, (x, w))| {
            let tip = format!("{}: {}", p.label, p.count);
            view! {
                <rect class=p.class x=x.to_string() width=w.to_string() height="8"><title>{tip}</title></rect>
            }
        })
        .collect_view();
    let legend = parts
        .iter()
        .map(|p| {
            let words = view! { <span class=format!("swatch {}", p.class)></span> {p.label.clone()} " " <strong>{p.count}</strong> };
            let item = match &p.href {
                Some(href) => view! { <a href=href.clone()>{words}</a> }.into_any(),
                None => words.into_any(),
            };
            view! { <li data-part=p.class>{item}</li> }
        })
        .collect_view();
    view! {
        <figure class="stacked" data-testid=testid aria-label=title>
            // The legend below says the same in words and links: the picture is for the eye.
            <svg class="stacked-bar" viewBox="0 0 100 8" preserveAspectRatio="none" aria-hidden="true">
                {rects}
            </svg>
            <ul class="legend small">{legend}</ul>
        </figure>
    }
}

#[cfg(test)]
mod tests {
    use super::{Part, layout};

    fn part(count: u64) -> Part {
        Part {
            label: String::new(),
            count,
            class: "part-ok",
            href: None,
        }
    }

    #[test]
    fn parts_share_the_width_in_order() {
        let at = layout(&[part(3), part(0), part(1)]);
        assert_eq!(at, vec![(0.0, 75.0), (75.0, 0.0), (75.0, 25.0)]);
        assert_eq!(layout(&[part(0)]), vec![(0.0, 0.0)]);
    }
}
