//! The SDK's table helpers on generated tables (`arbitrary`).
//!
//! Invariants: a Markdown table is one line per row plus two, with no bare
//! `\r`, whatever its cells and titles hold; an aligned text table too;
//! `fit_rows` stays within its budget and omits at most every row;
//! `evaluate` is consistent (`eq` and `ne` never agree on a cell).
#![no_main]

use arbitrary::Arbitrary;
use carillon_sdk::table::{Tone, evaluate, fit_rows, markdown_table, more_rows_note, text_table};
use carillon_sdk::{Column, Comparison, Condition, Table};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    columns: Vec<(String, String, String, String, Option<(u8, String)>)>,
    rows: Vec<Vec<String>>,
    budget: u16,
}

fn comparison(n: u8) -> Comparison {
    match n % 6 {
        0 => Comparison::Lt,
        1 => Comparison::Le,
        2 => Comparison::Gt,
        3 => Comparison::Ge,
        4 => Comparison::Eq,
        _ => Comparison::Ne,
    }
}

fuzz_target!(|input: Input| {
    if input.columns.len() > 16 || input.rows.len() > 64 {
        return;
    }
    let table = Table {
        columns: input
            .columns
            .into_iter()
            .map(|(key, title, prefix, suffix, condition)| Column {
                key,
                title,
                prefix,
                suffix,
                condition: condition.map(|(op, operand)| Condition {
                    op: comparison(op),
                    operand,
                }),
            })
            .collect(),
        rows: input.rows,
    };
    let rows = table.rows.len();
    let markdown = markdown_table(&table);
    assert_eq!(
        markdown.split('\n').count(),
        rows + 2,
        "markdown table lines"
    );
    let text = text_table(&table);
    assert_eq!(
        text.split('\n').count(),
        rows + 2,
        "text table lines: {text:?}"
    );
    // `\r` ends a line too (in Markdown and in most clients).
    assert!(
        !markdown.contains('\r') && !text.contains('\r'),
        "a table with a bare CR"
    );

    let budget = usize::from(input.budget);
    if let Some((fitted, omitted)) =
        fit_rows(&table, budget, markdown_table, |n| more_rows_note(n, "en"))
    {
        assert!(fitted.len() <= budget, "fit_rows over budget");
        assert!(omitted <= rows);
    }

    for column in &table.columns {
        let Some(condition) = &column.condition else {
            continue;
        };
        for row in &table.rows {
            for cell in row {
                let eq = evaluate(
                    &Condition {
                        op: Comparison::Eq,
                        operand: condition.operand.clone(),
                    },
                    cell,
                );
                let ne = evaluate(
                    &Condition {
                        op: Comparison::Ne,
                        operand: condition.operand.clone(),
                    },
                    cell,
                );
                assert!(
                    !(eq == ne && eq != Tone::Neutral),
                    "eq and ne agree on {cell:?} vs {:?}",
                    condition.operand
                );
            }
        }
    }
});
