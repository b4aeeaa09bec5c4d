//! kubectl's tables: parsing by column, re-rendering with kubectl's widths, ages normalised,
//! and `get -w` rows.

/// Whether `s` is an apimachinery human duration such as `0s`, `45s`, `5m30s`, `95m`, `5h10m`,
/// `3d4h`, `2y` or `689d`.
pub fn is_age(s: &str) -> bool {
    let mut pairs = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return false;
        }
        let unit = rest[digits..].chars().next();
        match unit {
            Some('s' | 'm' | 'h' | 'd' | 'y') => {}
            _ => return false,
        }
        rest = &rest[digits + 1..];
        pairs += 1;
    }
    (1..=2).contains(&pairs)
}

/// Header names of columns whose cells are durations that change between runs.
const AGE_COLUMNS: &[&str] = &["AGE", "LAST SEEN", "DURATION", "LAST SCHEDULE"];

/// Splits one kubectl table into cells by the header's column starts (columns are separated by
/// at least 3 spaces in kubectl's tabwriter; header names hold at most single spaces).
pub fn parse_table(block: &str) -> Vec<Vec<String>> {
    let mut lines = block.lines();
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let bytes = header.as_bytes();
    let mut starts = vec![0usize];
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b' ' {
            let run = bytes[i..].iter().take_while(|&&b| b == b' ').count();
            if run >= 2 && i + run < bytes.len() {
                starts.push(i + run);
            }
            i += run;
        } else {
            i += 1;
        }
    }
    let split = |line: &str| -> Vec<String> {
        let chars: Vec<char> = line.chars().collect();
        let mut cells = Vec::new();
        for (k, &s) in starts.iter().enumerate() {
            let e = starts
                .get(k + 1)
                .copied()
                .unwrap_or(usize::MAX)
                .min(chars.len());
            let s = s.min(chars.len());
            cells.push(chars[s..e].iter().collect::<String>().trim().to_string());
        }
        cells
    };
    std::iter::once(header).chain(lines).map(split).collect()
}

/// Renders rows the way kubectl's tabwriter does (min width 6, padding 3, last column unpadded).
pub fn render_table(rows: &[Vec<String>]) -> String {
    let ncols = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let mut widths = vec![0usize; ncols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                let w = (widths[i] + 3).max(6);
                line.push_str(c);
                line.push_str(&" ".repeat(w - c.chars().count()));
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Builds a table from string slices, for expected outputs with run-time values.
pub fn table(rows: &[&[&str]]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect();
    render_table(&rows)
}

/// Normalises kubectl table output: each blank-line separated block is a table whose AGE-like
/// cells (AGE, LAST SEEN, DURATION, LAST SCHEDULE holding a duration) become `<age>`; the block is
/// then re-rendered with kubectl's column rules, so everything else compares exactly.
pub fn normalize_tables(out: &str) -> String {
    fn flush(block: &mut Vec<String>, result: &mut String) {
        if block.is_empty() {
            return;
        }
        let mut rows = parse_table(&block.join("\n"));
        let age_cols: Vec<usize> = rows[0]
            .iter()
            .enumerate()
            .filter(|(_, h)| AGE_COLUMNS.contains(&h.as_str()))
            .map(|(i, _)| i)
            .collect();
        for r in rows.iter_mut().skip(1) {
            for &i in &age_cols {
                if let Some(c) = r.get_mut(i) {
                    if is_age(c) {
                        *c = "<age>".to_string();
                    }
                }
            }
        }
        result.push_str(&render_table(&rows));
        block.clear();
    }
    let mut result = String::new();
    let mut block: Vec<String> = Vec::new();
    for line in out.split_inclusive('\n') {
        if line.trim().is_empty() {
            flush(&mut block, &mut result);
            result.push_str(line);
        } else {
            block.push(line.trim_end_matches('\n').to_string());
        }
    }
    flush(&mut block, &mut result);
    if !out.ends_with('\n') && result.ends_with('\n') {
        result.pop();
    }
    result
}

/// Splits a watch row into whitespace-separated cells with durations replaced by `<age>`
/// (kubectl's watch output keeps growing column widths, so rows are compared cell by cell).
pub fn watch_cells(line: &str) -> Vec<String> {
    line.split_whitespace()
        .map(|c| {
            if is_age(c) {
                "<age>".to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// One row of `kubectl get pods -w`: name, READY (`1/1`) and STATUS (`Running`, `Terminating`…).
#[derive(Debug, Clone, PartialEq)]
pub struct WatchRow {
    pub name: String,
    pub ready: String,
    pub status: String,
}

impl WatchRow {
    /// Parses a watch line (None for the header or a line with fewer than 3 cells).
    pub fn parse(line: &str) -> Option<WatchRow> {
        let c = watch_cells(line);
        if c.len() < 3 || c[0] == "NAME" {
            return None;
        }
        Some(WatchRow {
            name: c[0].clone(),
            ready: c[1].clone(),
            status: c[2].clone(),
        })
    }

    /// Running with every container ready (`n/n`, n > 0).
    pub fn running_ready(&self) -> bool {
        self.status == "Running"
            && self
                .ready
                .split_once('/')
                .is_some_and(|(a, b)| a == b && a != "0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_recognised() {
        for a in [
            "0s", "45s", "5m30s", "95m", "5h10m", "30h", "3d4h", "689d", "2y",
        ] {
            assert!(is_age(a), "{a}");
        }
        for n in [
            "", "s", "5", "1x", "web:v1", "80/TCP", "1m2s3h", "<none>", "0/3",
        ] {
            assert!(!is_age(n), "{n}");
        }
    }

    #[test]
    fn tables_normalise_ages_and_keep_everything_else() {
        let raw = "NAME                     READY   UP-TO-DATE   AVAILABLE   AGE    CONTAINERS   IMAGES   SELECTOR\n\
                   deployment.apps/pagweb   0/3     0            0           2m5s   web          web:v1   app=pagweb\n";
        let want = "NAME                     READY   UP-TO-DATE   AVAILABLE   AGE     CONTAINERS   IMAGES   SELECTOR\n\
                    deployment.apps/pagweb   0/3     0            0           <age>   web          web:v1   app=pagweb\n";
        assert_eq!(normalize_tables(raw), want);
        // A table that already uses kubectl's widths re-renders unchanged.
        assert_eq!(normalize_tables(want), want);
    }

    #[test]
    fn empty_cells_and_spaces_inside_cells_survive() {
        let raw = "NAME          STATUS    COMPLETIONS   DURATION   AGE\n\
                   job.batch/j   Running   0/1                      5s\n\
                   \n\
                   NAME               SCHEDULE      TIMEZONE   SUSPEND   ACTIVE   LAST SCHEDULE   AGE\n\
                   cronjob.batch/cj   */5 * * * *   <none>     False     0        <none>          12s\n";
        let rows = parse_table(raw.split("\n\n").next().unwrap());
        assert_eq!(rows[1], vec!["job.batch/j", "Running", "0/1", "", "5s"]);
        let n = normalize_tables(raw);
        assert!(
            n.contains("job.batch/j   Running   0/1                      <age>\n"),
            "{n}"
        );
        assert!(
            n.contains("*/5 * * * *   <none>     False     0        <none>          <age>\n"),
            "{n}"
        );
    }

    #[test]
    fn watch_rows_parse() {
        assert_eq!(
            WatchRow::parse("NAME    READY   STATUS    RESTARTS   AGE"),
            None
        );
        let r = WatchRow::parse("web-0   1/1     Running   0          5s").unwrap();
        assert_eq!((r.name.as_str(), r.ready.as_str()), ("web-0", "1/1"));
        assert!(r.running_ready());
        let t = WatchRow::parse("web-2   1/1     Terminating   0          9s").unwrap();
        assert!(!t.running_ready());
        assert!(!WatchRow::parse("x   0/1   Running   0   1s")
            .unwrap()
            .running_ready());
    }

    #[test]
    fn table_builder_matches_kubectl_widths() {
        assert_eq!(
            table(&[&["NAME", "AGE"], &["a", "<age>"]]),
            "NAME   AGE\na      <age>\n"
        );
    }
}
