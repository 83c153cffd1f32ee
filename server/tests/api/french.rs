//! French everywhere: a reader whose language is French walks the pages of the drain (the
//! nodes and a node's page with its drain form), the install (the CNI page) and the recovery
//! (the overview's recovery part), and the network doctor's pages, as the server renders them
//! against the lab; no text of the page is one of the UI's own English texts (those whose French
//! differs), which would mean a word left untranslated.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use app::i18n::{Lang, Msg, Net, Ui};
use grappe_engine::users::Role;
use reqwest::StatusCode;

use crate::live::{kubectl, spawn_with_lab};

/// The UI's English texts that French says otherwise (templates with `{param}` left out: their
/// filled form cannot be told from data).
fn english_only() -> BTreeSet<&'static str> {
    let pairs = Msg::ALL
        .iter()
        .map(|m| (m.text(Lang::En), m.text(Lang::Fr)))
        .chain(
            Net::ALL
                .iter()
                .map(|m| (m.text(Lang::En), m.text(Lang::Fr))),
        )
        .chain(Ui::ALL.iter().map(|m| (m.text(Lang::En), m.text(Lang::Fr))));
    pairs
        .filter(|(en, fr)| en != fr && !en.contains('{') && en.trim().len() > 2)
        .map(|(en, _)| en.trim())
        .collect()
}

/// `html` without its `open ... close` elements (scripts, styles: no words for people).
fn without(html: &str, open: &str, close: &str) -> String {
    let mut kept = String::new();
    let mut rest = html;
    while let Some(start) = rest.find(open) {
        kept.push_str(&rest[..start]);
        rest = rest[start..]
            .find(close)
            .map_or("", |end| &rest[start + end + close.len()..]);
    }
    kept.push_str(rest);
    kept
}

/// The text nodes of an HTML page (scripts and styles left out), entities decoded.
fn texts(html: &str) -> Vec<String> {
    let page = without(&without(html, "<script", "</script>"), "<style", "</style>");
    page.split('<')
        .filter_map(|chunk| chunk.split_once('>').map(|(_, t)| t))
        .map(|t| {
            t.replace("&#x27;", "'")
                .replace("&#39;", "'")
                .replace("&quot;", "\"")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&")
                .trim()
                .to_owned()
        })
        .filter(|t| !t.is_empty())
        .collect()
}

#[tokio::test]
async fn a_french_reader_reads_no_english_on_the_flows_pages() {
    let (app, _dir) = spawn_with_lab().await;
    let password = app.add_user("francoise", Role::Admin).await;
    let cookie = app.login("francoise", &password).await;
    let res = app
        .call("/api/set_language", Some(&cookie), &[("lang", "fr")])
        .await;
    assert!(res.status().is_success(), "set_language: {}", res.status());
    let node = kubectl(&["get", "nodes", "-o", "jsonpath={.items[0].metadata.name}"]);
    let english = english_only();
    assert!(
        english.len() > 200,
        "the tables hold {} English-only texts",
        english.len()
    );

    // The watches read the lab first (the nodes page lists the node then).
    let start = Instant::now();
    while !app
        .get("/c/lab/nodes", Some(&cookie))
        .await
        .text()
        .await
        .expect("body")
        .contains(&format!("data-node=\"{node}\""))
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the lab's nodes never listed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let pages = [
        "/".to_owned(),
        "/c/lab/overview".to_owned(),
        "/c/lab/overview?recover=1".to_owned(),
        "/c/lab/nodes".to_owned(),
        format!("/c/lab/nodes/{node}"),
        "/c/lab/cni".to_owned(),
        "/c/lab/ipam".to_owned(),
        "/c/lab/bgp".to_owned(),
        "/c/lab/mtu".to_owned(),
        "/history".to_owned(),
        "/settings".to_owned(),
    ];
    let mut found = Vec::new();
    for path in &pages {
        let res = app.get(path, Some(&cookie)).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let html = res.text().await.expect("body");
        assert!(
            html.contains("<html lang=\"fr\""),
            "{path}: the page is not marked French"
        );
        for text in texts(&html) {
            if english.contains(text.as_str()) {
                found.push(format!("{path}: {text:?}"));
            }
        }
    }
    assert!(
        found.is_empty(),
        "English on French pages:\n{}",
        found.join("\n")
    );
}

#[test]
fn text_nodes_are_read_without_markup_scripts_or_styles() {
    let html = "<p>Nœuds <b>&amp; pods</b></p><script>var x = \"Nodes\";</script><style>p{}</style><i> </i>";
    assert_eq!(texts(html), vec!["Nœuds", "& pods"]);
}
