//! The one CSV writer of every export (the audit log, the runs): a header, then rows whose
//! cells a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR) are prefixed with
//! a quote, so that an export opened in a spreadsheet cannot execute what an attacker typed
//! (a user agent, a run title from a manifest's URL, an error text from a cluster).

use std::borrow::Cow;

/// Writes `header` then each row of `rows` as CSV to `out`, every cell guarded.
///
/// # Errors
/// [`csv::Error`] when writing fails.
pub fn write<W, R, C>(out: W, header: &[&str], rows: R) -> Result<(), csv::Error>
where
    W: std::io::Write,
    R: IntoIterator,
    R::Item: IntoIterator<Item = C>,
    C: AsRef<str>,
{
    let mut w = csv::Writer::from_writer(out);
    w.write_record(header)?;
    for row in rows {
        let cells: Vec<String> = row
            .into_iter()
            .map(|c| spreadsheet_safe(c.as_ref()).into_owned())
            .collect();
        w.write_record(&cells)?;
    }
    w.flush()?;
    Ok(())
}

fn spreadsheet_safe(cell: &str) -> Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn formula_cells_are_quoted_and_others_left_alone() {
        let mut out = Vec::new();
        super::write(
            &mut out,
            &["a", "b"],
            [["=HYPERLINK(\"x\")", "plain"], ["-1", "@sum"]],
        )
        .expect("csv");
        let text = String::from_utf8(out).expect("utf8");
        assert_eq!(text, "a,b\n\"'=HYPERLINK(\"\"x\"\")\",plain\n'-1,'@sum\n");
    }
}
