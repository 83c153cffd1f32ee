//! Small pictures drawn on the server as SVG (no chart library in the wasm bundle, readable
//! without JavaScript): a stacked bar with a legend in words (and links) so that colour never
//! carries the meaning alone, and a node's IPAM blocks as cells filled as far as each block is.

use grappe_views::ipam::BlockUseView;
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

/// Cell geometry of a block map, in SVG units.
const CELL: f64 = 10.0;
const CELL_GAP: f64 = 3.0;
const CELL_HEIGHT: f64 = 14.0;

/// How far up a block's cell is filled (0 to [`CELL_HEIGHT`]) and the class that colours it: a
/// full block is `part-bad`, one at 90 % or more `part-warn`.
pub fn fill(b: &BlockUseView) -> (f64, &'static str) {
    if b.size == 0 {
        return (0.0, "part-ok");
    }
    #[allow(clippy::cast_precision_loss)]
    let share = b.used.min(b.size) as f64 / b.size as f64;
    let class = if b.used >= b.size {
        "part-bad"
    } else if share >= 0.9 {
        "part-warn"
    } else {
        "part-ok"
    };
    (share * CELL_HEIGHT, class)
}

/// A node's blocks side by side, each filled as far as it is used; each cell's tooltip says
/// its CIDR and `used / size` (the row beside it gives the counts in words).
#[component]
pub fn BlockMap(blocks: Vec<BlockUseView>) -> impl IntoView {
    #[allow(clippy::cast_precision_loss)]
    let width = (blocks.len() as f64 * (CELL + CELL_GAP) - CELL_GAP).max(CELL);
    let cells = blocks
        .into_iter()
        .enumerate()
        .map(|(i, b)| {
            #[allow(clippy::cast_precision_loss)]
            let x = i as f64 * (CELL + CELL_GAP);
            let (height, class) = fill(&b);
            let tip = format!("{}: {} / {}", b.cidr, b.used, b.size);
            view! {
                <g data-block=b.cidr.clone() data-used=b.used data-size=b.size>
                    <title>{tip}</title>
                    <rect class="cell-track" x=x.to_string() y="0" width=CELL.to_string() height=CELL_HEIGHT.to_string()></rect>
                    <rect class=class x=x.to_string() y=(CELL_HEIGHT - height).to_string() width=CELL.to_string() height=height.to_string()></rect>
                </g>
            }
        })
        .collect_view();
    view! {
        <svg class="block-map" viewBox=format!("0 0 {width} {CELL_HEIGHT}") aria-hidden="true">{cells}</svg>
    }
}

#[cfg(test)]
mod tests {
    use super::{BlockUseView, CELL_HEIGHT, Part, fill, layout};

    #[test]
    fn a_block_fills_as_far_as_it_is_used_and_warns_when_nearly_full() {
        let b = |used, size| BlockUseView {
            cidr: "10.0.0.0/29".into(),
            used,
            size,
        };
        assert_eq!(fill(&b(4, 8)), (CELL_HEIGHT / 2.0, "part-ok"));
        assert_eq!(fill(&b(58, 64)).1, "part-warn");
        assert_eq!(fill(&b(8, 8)), (CELL_HEIGHT, "part-bad"));
        assert_eq!(fill(&b(0, 0)), (0.0, "part-ok"));
    }

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
