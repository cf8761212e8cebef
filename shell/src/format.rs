//! Result rendering: an aligned table that fits the terminal, vertical records, and the
//! machine formats (CSV, TSV, JSON, NDJSON, Markdown), which carry no decoration.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use std::str::FromStr;
use unicode_width::UnicodeWidthStr;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns with a header, fitted to the terminal: long text wraps onto more lines
    /// and multi-line values (plans, `SHOW CREATE`) keep their lines, as psql's wrapped
    /// format; numbers and dates are never cut.
    Table,
    /// One `column | value` line per field, records separated by a header line.
    Vertical,
    /// RFC 4180 CSV with a header row; NULL is an empty field.
    Csv,
    /// Tab-separated values with a header row; NULL is an empty field.
    Tsv,
    /// One JSON array of objects.
    Json,
    /// One JSON object per line.
    NdJson,
    /// A GitHub-flavoured Markdown table.
    Markdown,
}

/// The format names, for help and errors.
pub const FORMAT_NAMES: &str = "table, vertical, csv, tsv, json, ndjson, markdown";

impl FromStr for Format {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Ok(match name.to_ascii_lowercase().as_str() {
            "table" | "aligned" => Format::Table,
            "vertical" | "expanded" => Format::Vertical,
            "csv" => Format::Csv,
            "tsv" => Format::Tsv,
            "json" => Format::Json,
            "ndjson" | "jsonl" => Format::NdJson,
            "markdown" | "md" => Format::Markdown,
            other => {
                return Err(format!(
                    "unknown format {other:?}: use one of {FORMAT_NAMES}"
                ));
            }
        })
    }
}

impl Format {
    /// Whether the format is for people (decorated: row counts, timing, colour).
    pub fn is_for_people(self) -> bool {
        matches!(self, Format::Table | Format::Vertical)
    }
}

/// Presentation choices that depend on where the output goes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    /// ANSI colour (only on a terminal).
    pub color: bool,
    /// The terminal's width, to fit tables to.
    pub width: Option<usize>,
}

const NULL: &str = "NULL";

/// Renders one result in `format`.
///
/// ```
/// use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
/// use datafusion::arrow::datatypes::{DataType, Field, Schema};
/// use osprey_shell::format::{render, Format, Style};
/// use std::sync::Arc;
///
/// let schema = Arc::new(Schema::new(vec![
///     Field::new("id", DataType::Int64, false),
///     Field::new("name", DataType::Utf8, true),
/// ]));
/// let batch = RecordBatch::try_new(schema.clone(), vec![
///     Arc::new(Int64Array::from(vec![1, 2])),
///     Arc::new(StringArray::from(vec![Some("ada"), None])),
/// ]).unwrap();
/// let text = render(Format::Csv, &schema, &[batch], Style::default()).unwrap();
/// assert_eq!(text, "id,name\n1,ada\n2,\n");
/// ```
pub fn render(
    format: Format,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    style: Style,
) -> Result<String, ArrowError> {
    match format {
        Format::Csv => delimited(schema, batches, b','),
        Format::Tsv => delimited(schema, batches, b'\t'),
        Format::Json => {
            let mut writer = datafusion::arrow::json::ArrayWriter::new(Vec::new());
            for batch in batches {
                writer.write(batch)?;
            }
            writer.finish()?;
            let mut text = String::from_utf8_lossy(&writer.into_inner()).into_owned();
            if text.is_empty() {
                text.push_str("[]");
            }
            text.push('\n');
            Ok(text)
        }
        Format::NdJson => {
            let mut writer = datafusion::arrow::json::LineDelimitedWriter::new(Vec::new());
            for batch in batches {
                writer.write(batch)?;
            }
            writer.finish()?;
            Ok(String::from_utf8_lossy(&writer.into_inner()).into_owned())
        }
        Format::Table => Ok(table(&cells(schema, batches)?, style)),
        Format::Vertical => Ok(vertical(&cells(schema, batches)?, style)),
        Format::Markdown => Ok(markdown(&cells(schema, batches)?)),
    }
}

impl Format {
    /// Whether results in this format can be printed batch by batch as they arrive (so a
    /// result of any size passes through in bounded memory).
    pub fn streams(self) -> bool {
        matches!(self, Format::Csv | Format::Tsv | Format::NdJson)
    }
}

/// Renders one batch of a streamed result ([`Format::streams`]): CSV and TSV carry the header
/// only when `first`.
pub fn render_part(
    format: Format,
    schema: &SchemaRef,
    batch: &RecordBatch,
    first: bool,
) -> Result<String, ArrowError> {
    match format {
        Format::Csv => delimited_part(schema, std::slice::from_ref(batch), b',', first),
        Format::Tsv => delimited_part(schema, std::slice::from_ref(batch), b'\t', first),
        other => render(other, schema, std::slice::from_ref(batch), Style::default()),
    }
}

fn delimited(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    delimiter: u8,
) -> Result<String, ArrowError> {
    delimited_part(schema, batches, delimiter, true)
}

fn delimited_part(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    delimiter: u8,
    header: bool,
) -> Result<String, ArrowError> {
    let mut writer = datafusion::arrow::csv::WriterBuilder::new()
        .with_header(header)
        .with_delimiter(delimiter)
        .build(Vec::new());
    if batches.is_empty() {
        writer.write(&RecordBatch::new_empty(schema.clone()))?;
    }
    for batch in batches {
        writer.write(batch)?;
    }
    Ok(String::from_utf8_lossy(&writer.into_inner()).into_owned())
}

/// A result as text: the header, how each column lays out, and the rows (`None` for NULL).
struct Cells {
    header: Vec<String>,
    kinds: Vec<ColumnKind>,
    rows: Vec<Vec<Option<String>>>,
}

/// How a column's values may be laid out in a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColumnKind {
    /// Numbers: aligned on the right, never cut or wrapped.
    Number,
    /// Dates, times, booleans and the like: never cut or wrapped.
    Fixed,
    /// Text and nested values: wrapped onto more lines to fit, and their own line breaks kept.
    Text,
}

impl ColumnKind {
    fn of(data_type: &DataType) -> Self {
        if data_type.is_numeric() {
            ColumnKind::Number
        } else if data_type.is_temporal()
            || matches!(
                data_type,
                DataType::Boolean | DataType::Interval(_) | DataType::Duration(_)
            )
        {
            ColumnKind::Fixed
        } else {
            ColumnKind::Text
        }
    }
}

fn cells(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Cells, ArrowError> {
    let options = FormatOptions::default();
    let mut rows = Vec::new();
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|column| ArrayFormatter::try_new(column.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()?;
        // Logical nulls: a NullArray (a bare NULL) has no validity buffer but is all nulls.
        let nulls: Vec<_> = batch.columns().iter().map(|c| c.logical_nulls()).collect();
        for row in 0..batch.num_rows() {
            rows.push(
                formatters
                    .iter()
                    .zip(&nulls)
                    .map(|(formatter, nulls)| {
                        let valid = nulls.as_ref().is_none_or(|nulls| nulls.is_valid(row));
                        valid.then(|| formatter.value(row).to_string())
                    })
                    .collect(),
            );
        }
    }
    Ok(Cells {
        header: schema.fields().iter().map(|f| f.name().clone()).collect(),
        kinds: schema
            .fields()
            .iter()
            .map(|f| ColumnKind::of(f.data_type()))
            .collect(),
        rows,
    })
}

/// Control characters shown visibly, so a value cannot break the layout.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\n' => '↵',
            '\t' => '→',
            c if c.is_control() => '·',
            c => c,
        })
        .collect()
}

fn width(text: &str) -> usize {
    UnicodeWidthStr::width(text)
}

/// `text` cut to `max` columns, ending in `…` when cut.
fn fit(text: &str, max: usize) -> String {
    if width(text) <= max {
        return text.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if used + w + 1 > max {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

fn paint(text: &str, code: &str, color: bool) -> String {
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// Column widths that fit `total` columns of terminal: the widest text columns give way first,
/// none below 6 (or its natural width); numbers and dates keep their width.
fn fitted_widths(natural: &[usize], kinds: &[ColumnKind], total: Option<usize>) -> Vec<usize> {
    let mut widths = natural.to_vec();
    let Some(total) = total else {
        return widths;
    };
    // Each column takes its width plus " | " between columns.
    let chrome = natural.len().saturating_sub(1) * 3;
    let budget = total.saturating_sub(chrome).max(natural.len() * 6);
    while widths.iter().sum::<usize>() > budget {
        let widest = widths
            .iter()
            .enumerate()
            .filter(|(i, w)| kinds[*i] == ColumnKind::Text && **w > 6)
            .max_by_key(|(_, w)| **w);
        let Some((widest, &w)) = widest else {
            break;
        };
        widths[widest] = w - 1;
    }
    widths
}

/// A value as the lines it takes in a column `max` wide: its own line breaks kept, long lines
/// wrapped (psql's wrapped format). Tabs become spaces and other control characters are
/// shown visibly, so a value cannot break the layout.
fn wrapped(text: &str, max: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for line in text.split('\n') {
        let line = printable(&line.trim_end_matches('\r').replace('\t', "    "));
        let mut current = String::new();
        let mut used = 0;
        for c in line.chars() {
            let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
            if used + w > max.max(1) && !current.is_empty() {
                lines.push(std::mem::take(&mut current));
                used = 0;
            }
            current.push(c);
            used += w;
        }
        lines.push(current);
    }
    lines
}

fn table(cells: &Cells, style: Style) -> String {
    let natural: Vec<usize> = cells
        .header
        .iter()
        .enumerate()
        .map(|(i, name)| {
            cells
                .rows
                .iter()
                .map(|row| match &row[i] {
                    None => width(NULL),
                    Some(text) => wrapped(text, usize::MAX)
                        .iter()
                        .map(|line| width(line))
                        .max()
                        .unwrap_or(0),
                })
                .chain([width(name)])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let widths = fitted_widths(&natural, &cells.kinds, style.width);
    let mut out = String::new();
    let header: Vec<String> = cells
        .header
        .iter()
        .zip(&widths)
        .map(|(name, w)| {
            let text = fit(&printable(name), *w);
            let spaces = " ".repeat(w.saturating_sub(width(&text)));
            format!("{}{spaces}", paint(&text, "1", style.color))
        })
        .collect();
    out.push_str(header.join(" | ").trim_end());
    out.push('\n');
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    out.push_str(&rule.join("-+-"));
    out.push('\n');
    for row in &cells.rows {
        let lines: Vec<Vec<String>> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| match cell {
                None => vec![NULL.to_string()],
                Some(text) => wrapped(text, *w),
            })
            .collect();
        let height = lines.iter().map(Vec::len).max().unwrap_or(1);
        for index in 0..height {
            let line: Vec<String> = lines
                .iter()
                .zip(row)
                .zip(&widths)
                .zip(&cells.kinds)
                .map(|(((cell_lines, cell), w), kind)| {
                    let shown = cell_lines.get(index).map(String::as_str).unwrap_or("");
                    let spaces = " ".repeat(w.saturating_sub(width(shown)));
                    match cell {
                        None => format!("{}{spaces}", paint(shown, "2", style.color)),
                        // Numbers line up on the right, like psql's.
                        Some(_) if *kind == ColumnKind::Number => format!("{spaces}{shown}"),
                        Some(_) => format!("{shown}{spaces}"),
                    }
                })
                .collect();
            out.push_str(line.join(" | ").trim_end());
            out.push('\n');
        }
    }
    out
}

fn vertical(cells: &Cells, style: Style) -> String {
    let name_width = cells.header.iter().map(|n| width(n)).max().unwrap_or(0);
    let value_width = style
        .width
        .map(|w| w.saturating_sub(name_width + 3).max(10));
    let mut out = String::new();
    for (index, row) in cells.rows.iter().enumerate() {
        out.push_str(&paint(
            &format!("-[ RECORD {} ]", index + 1),
            "1",
            style.color,
        ));
        out.push('\n');
        for (name, cell) in cells.header.iter().zip(row) {
            let lines = match cell {
                None => vec![paint(NULL, "2", style.color)],
                Some(text) => wrapped(text, value_width.unwrap_or(usize::MAX)),
            };
            let spaces = " ".repeat(name_width - width(name));
            for (index, line) in lines.iter().enumerate() {
                let label = if index == 0 { name.as_str() } else { "" };
                let spaces = if index == 0 {
                    spaces.clone()
                } else {
                    " ".repeat(name_width)
                };
                out.push_str(format!("{label}{spaces} | {line}").trim_end());
                out.push('\n');
            }
        }
    }
    out
}

fn markdown(cells: &Cells) -> String {
    let escape = |text: &str| printable(text).replace('|', "\\|");
    let mut out = format!(
        "| {} |\n|{}|\n",
        cells
            .header
            .iter()
            .map(|h| escape(h))
            .collect::<Vec<_>>()
            .join(" | "),
        cells
            .header
            .iter()
            .map(|_| "---")
            .collect::<Vec<_>>()
            .join("|")
    );
    for row in &cells.rows {
        let line: Vec<String> = row
            .iter()
            .map(|cell| cell.as_deref().map_or(NULL.to_string(), escape))
            .collect();
        out.push_str(&format!("| {} |\n", line.join(" | ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn sample() -> (SchemaRef, RecordBatch) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("note", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![1, 22])),
                Arc::new(StringArray::from(vec![
                    Some("a rather long note that will not fit | at all"),
                    None,
                ])),
            ],
        )
        .unwrap();
        (schema, batch)
    }

    #[test]
    fn tables_fit_the_terminal_and_show_null() {
        let (schema, batch) = sample();
        let style = Style {
            color: false,
            width: Some(30),
        };
        let text = render(Format::Table, &schema, &[batch], style).unwrap();
        for line in text.lines() {
            assert!(width(line) <= 30, "{line:?} is wider than 30");
        }
        // The long note wraps onto more lines (nothing is cut), and the NULL row follows it.
        let note: String = text
            .lines()
            .skip(2)
            .filter_map(|line| line.split_once(" | ").map(|(_, note)| note.to_string()))
            .collect();
        assert!(
            note.replace(' ', "")
                .contains("aratherlongnotethatwillnotfit|atall"),
            "{text}"
        );
        assert!(text.lines().last().unwrap().ends_with("NULL"), "{text}");
        assert!(
            text.lines().nth(2).unwrap().starts_with(" 1 | a rather"),
            "{text}"
        );
    }

    #[test]
    fn multi_line_values_keep_their_lines_and_numbers_are_never_cut() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("total", DataType::Int64, false),
            Field::new("plan", DataType::Utf8, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![1234567890123])),
                Arc::new(StringArray::from(vec![
                    "ProjectionExec\n  FilterExec\n    DataSourceExec",
                ])),
            ],
        )
        .unwrap();
        let style = Style {
            color: false,
            width: Some(40),
        };
        let text = render(Format::Table, &schema, std::slice::from_ref(&batch), style).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[2], "1234567890123 | ProjectionExec", "{text}");
        assert_eq!(lines[3], "              |   FilterExec", "{text}");
        assert!(!text.contains('↵') && !text.contains('…'), "{text}");
        // Too narrow a terminal wraps the text, never the number.
        let narrow = Style {
            color: false,
            width: Some(10),
        };
        let text = render(Format::Table, &schema, &[batch], narrow).unwrap();
        assert!(text.contains("1234567890123 | "), "{text}");
    }

    #[test]
    fn machine_formats_are_plain() {
        let (schema, batch) = sample();
        let style = Style::default();
        let md = render(
            Format::Markdown,
            &schema,
            std::slice::from_ref(&batch),
            style,
        )
        .unwrap();
        assert!(md.starts_with(
            "| id | note |\n|---|---|\n| 1 | a rather long note that will not fit \\| at all |"
        ));
        let json = render(Format::NdJson, &schema, std::slice::from_ref(&batch), style).unwrap();
        assert_eq!(json.lines().nth(1), Some(r#"{"id":22}"#));
        let vertical = render(Format::Vertical, &schema, &[batch], style).unwrap();
        assert!(
            vertical.contains("-[ RECORD 2 ]\nid   | 22\nnote | NULL\n"),
            "{vertical}"
        );
        let empty = render(Format::Json, &schema, &[], style).unwrap();
        assert_eq!(empty, "[]\n");
        assert_eq!(
            render(Format::Csv, &schema, &[], style).unwrap(),
            "id,note\n"
        );
    }
}
