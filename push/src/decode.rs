//! A result cell as JSON, whatever its database type: each driver tries
//! the Rust types its columns may decode into, in an order where the
//! narrower meaning wins (a boolean before an integer, an integer before a
//! decimal). A type none fits is a clear error naming the column.

use serde_json::{Value, json};
use sqlx::types::Decimal;
use sqlx::types::time::{Date, OffsetDateTime, PrimitiveDateTime, Time};
use sqlx::{Column as _, Row, TypeInfo as _};

use crate::query::QueryError;

fn date(d: Date) -> Value {
    json!(format!(
        "{:04}-{:02}-{:02}",
        d.year(),
        u8::from(d.month()),
        d.day()
    ))
}

fn time_of_day(t: Time) -> String {
    format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second())
}

fn datetime(t: PrimitiveDateTime) -> Value {
    let d = t.date();
    json!(format!(
        "{:04}-{:02}-{:02}T{}",
        d.year(),
        u8::from(d.month()),
        d.day(),
        time_of_day(t.time())
    ))
}

fn instant(t: OffsetDateTime) -> Value {
    let utc = t.to_offset(sqlx::types::time::UtcOffset::UTC);
    let d = utc.date();
    json!(format!(
        "{:04}-{:02}-{:02}T{}Z",
        d.year(),
        u8::from(d.month()),
        d.day(),
        time_of_day(utc.time())
    ))
}

fn decimal(d: Decimal) -> Value {
    let text = d.normalize().to_string();
    serde_json::from_str::<serde_json::Number>(&text).map_or(Value::String(text), Value::Number)
}

fn float(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}

fn bytes(b: Vec<u8>) -> Value {
    match String::from_utf8(b) {
        Ok(s) => Value::String(s),
        Err(e) => {
            let hex: String = e.into_bytes().iter().map(|b| format!("{b:02x}")).collect();
            Value::String(format!("0x{hex}"))
        }
    }
}

/// Tries each `ty => convert` in order on cell `i` of `row`; `None` if none
/// fits.
macro_rules! first_fit {
    ($row:expr, $i:expr, $( $ty:ty => $conv:expr ),+ $(,)?) => {{
        let mut out: Option<Value> = None;
        $(
            if out.is_none() {
                if let Ok(v) = $row.try_get::<Option<$ty>, _>($i) {
                    out = Some(v.map_or(Value::Null, $conv));
                }
            }
        )+
        out
    }};
}

fn undecodable<R: Row>(row: &R, i: usize) -> QueryError {
    let c = &row.columns()[i];
    QueryError::Undecodable {
        column: c.name().to_owned(),
        type_name: c.type_info().name().to_owned(),
    }
}

/// A PostgreSQL row.
pub(crate) fn postgres(row: &sqlx::postgres::PgRow) -> Result<Vec<Value>, QueryError> {
    (0..row.len())
        .map(|i| {
            first_fit!(row, i,
                bool => Value::Bool,
                i64 => |n| json!(n),
                i32 => |n| json!(n),
                i16 => |n| json!(n),
                f64 => float,
                f32 => |f| float(f64::from(f)),
                Decimal => decimal,
                String => Value::String,
                Date => date,
                PrimitiveDateTime => datetime,
                OffsetDateTime => instant,
                Time => |t| json!(time_of_day(t)),
                serde_json::Value => |v| v,
            )
            .ok_or_else(|| undecodable(row, i))
        })
        .collect()
}

/// A MySQL or MariaDB row.
pub(crate) fn mysql(row: &sqlx::mysql::MySqlRow) -> Result<Vec<Value>, QueryError> {
    (0..row.len())
        .map(|i| {
            let boolean = row.columns()[i].type_info().name() == "BOOLEAN";
            let cell = if boolean {
                first_fit!(row, i, bool => Value::Bool)
            } else {
                None
            };
            cell.or_else(|| {
                first_fit!(row, i,
                    i64 => |n| json!(n),
                    i32 => |n| json!(n),
                    i16 => |n| json!(n),
                    i8 => |n| json!(n),
                    u64 => |n| json!(n),
                    u32 => |n| json!(n),
                    u16 => |n| json!(n),
                    u8 => |n| json!(n),
                    f64 => float,
                    f32 => |f| float(f64::from(f)),
                    Decimal => decimal,
                    String => Value::String,
                    Date => date,
                    PrimitiveDateTime => datetime,
                    OffsetDateTime => instant,
                    Time => |t| json!(time_of_day(t)),
                    serde_json::Value => |v| v,
                    Vec<u8> => bytes,
                )
            })
            .ok_or_else(|| undecodable(row, i))
        })
        .collect()
}

/// A SQLite row (types are the values', not the columns').
pub(crate) fn sqlite(row: &sqlx::sqlite::SqliteRow) -> Result<Vec<Value>, QueryError> {
    (0..row.len())
        .map(|i| {
            first_fit!(row, i,
                i64 => |n| json!(n),
                f64 => float,
                String => Value::String,
                Vec<u8> => bytes,
            )
            .ok_or_else(|| undecodable(row, i))
        })
        .collect()
}
