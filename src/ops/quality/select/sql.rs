//! A SQL expression, as sqlparser reads it, turned into a polars
//! expression: the part of SQL a row filter needs. Semantics are SQL's: a
//! comparison with a null is null, `and`/`or` are three-valued, `in` and
//! `between` are the comparisons they stand for.

use std::collections::BTreeSet;

use polars::prelude::{col, lit, Expr, LiteralValue};
use sqlparser::ast::{
    BinaryOperator, Expr as Sql, FunctionArg, FunctionArgExpr, FunctionArguments, UnaryOperator,
    Value,
};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Token;

/// `text` as a polars expression and the columns it names (each once, in
/// name order), or what is wrong with it.
pub fn parse(text: &str) -> Result<(Expr, Vec<String>), String> {
    let mut parser = Parser::new(&GenericDialect {})
        .try_with_sql(text)
        .map_err(|e| e.to_string())?;
    let tree = parser.parse_expr().map_err(|e| e.to_string())?;
    let next = parser.peek_token().token;
    if next != Token::EOF {
        return Err(format!("`{next}` after the end of the expression"));
    }
    let mut columns = BTreeSet::new();
    let expr = Translator {
        columns: &mut columns,
    }
    .translate(&tree)?;
    Ok((expr, columns.into_iter().collect()))
}

/// Turns a tree into a polars expression, noting the columns it names.
struct Translator<'a> {
    columns: &'a mut BTreeSet<String>,
}

impl Translator<'_> {
    fn translate(&mut self, e: &Sql) -> Result<Expr, String> {
        Ok(match e {
            // A name, bare or in double quotes, is a column.
            Sql::Identifier(id) => {
                self.columns.insert(id.value.clone());
                col(id.value.as_str())
            }
            Sql::Value(v) => value(&v.value)?,
            Sql::Nested(e) => self.translate(e)?,
            Sql::BinaryOp { left, op, right } => {
                let (l, r) = (self.translate(left)?, self.translate(right)?);
                match op {
                    // sqlparser reads `==` as `=`.
                    BinaryOperator::Eq => l.eq(r),
                    BinaryOperator::NotEq => l.neq(r),
                    BinaryOperator::Lt => l.lt(r),
                    BinaryOperator::LtEq => l.lt_eq(r),
                    BinaryOperator::Gt => l.gt(r),
                    BinaryOperator::GtEq => l.gt_eq(r),
                    BinaryOperator::And => l.and(r),
                    BinaryOperator::Or => l.or(r),
                    BinaryOperator::Plus => l + r,
                    BinaryOperator::Minus => l - r,
                    BinaryOperator::Multiply => l * r,
                    // SQL's `/` on integers truncates; a threshold on a ratio of
                    // counts means the real quotient, as in polars-sql.
                    BinaryOperator::Divide => l.true_div(r),
                    BinaryOperator::Modulo => l % r,
                    other => return Err(format!("the operator `{other}` is not supported")),
                }
            }
            Sql::UnaryOp { op, expr } => match (op, expr.as_ref()) {
                (UnaryOperator::Not, e) => self.translate(e)?.not(),
                (UnaryOperator::Plus, e) => self.translate(e)?,
                (UnaryOperator::Minus, Sql::Value(v)) => match &v.value {
                    Value::Number(n, _) => number(&format!("-{n}"))?,
                    _ => self.translate(expr)? * lit(-1),
                },
                (UnaryOperator::Minus, e) => self.translate(e)? * lit(-1),
                (other, _) => return Err(format!("the operator `{other}` is not supported")),
            },
            Sql::IsNull(e) => self.translate(e)?.is_null(),
            Sql::IsNotNull(e) => self.translate(e)?.is_not_null(),
            // `is true` is never null: a null is not true.
            Sql::IsTrue(e) => self.translate(e)?.fill_null(lit(false)),
            Sql::IsNotTrue(e) => self.translate(e)?.fill_null(lit(false)).not(),
            Sql::IsFalse(e) => self.translate(e)?.not().fill_null(lit(false)),
            Sql::IsNotFalse(e) => self.translate(e)?.not().fill_null(lit(false)).not(),
            Sql::Between {
                expr,
                negated,
                low,
                high,
            } => {
                let x = self.translate(expr)?;
                let within = x
                    .clone()
                    .gt_eq(self.translate(low)?)
                    .and(x.lt_eq(self.translate(high)?));
                if *negated {
                    within.not()
                } else {
                    within
                }
            }
            Sql::InList {
                expr,
                list,
                negated,
            } => {
                let x = self.translate(expr)?;
                let mut any: Option<Expr> = None;
                for item in list {
                    let eq = x.clone().eq(self.translate(item)?);
                    any = Some(match any {
                        None => eq,
                        Some(a) => a.or(eq),
                    });
                }
                let any = any.ok_or("`in ()` needs at least one value")?;
                if *negated {
                    any.not()
                } else {
                    any
                }
            }
            Sql::Like {
                negated,
                any: false,
                expr,
                pattern,
                escape_char: None,
            } => {
                let m = like(self.translate(expr)?, pattern)?;
                if *negated {
                    m.not()
                } else {
                    m
                }
            }
            Sql::Function(f) => {
                let name = f.name.to_string().to_lowercase();
                let arg = match &f.args {
                    FunctionArguments::List(l) if l.args.len() == 1 && l.clauses.is_empty() => {
                        match &l.args[0] {
                            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => self.translate(e)?,
                            _ => return Err(format!("`{f}`: one plain argument expected")),
                        }
                    }
                    _ => return Err(format!("`{f}`: one argument expected")),
                };
                match name.as_str() {
                    "length" | "char_length" => arg.str().len_chars(),
                    "lower" => arg.str().to_lowercase(),
                    "upper" => arg.str().to_uppercase(),
                    _ => {
                        return Err(format!(
                            "the function `{name}` is not supported (length, lower and upper are)"
                        ))
                    }
                }
            }
            other => return Err(format!("`{other}` is not supported in an expression")),
        })
    }
}

fn value(v: &Value) -> Result<Expr, String> {
    Ok(match v {
        Value::Number(n, _) => number(n)?,
        Value::SingleQuotedString(s) => lit(s.as_str()),
        Value::Boolean(b) => lit(*b),
        Value::Null => Expr::Literal(LiteralValue::untyped_null()),
        other => return Err(format!("the value `{other}` is not supported")),
    })
}

/// An integer where the text is one, else a float.
fn number(n: &str) -> Result<Expr, String> {
    if let Ok(i) = n.parse::<i64>() {
        return Ok(lit(i));
    }
    n.parse::<f64>()
        .map(lit)
        .map_err(|_| format!("`{n}` is not a number"))
}

/// `like` with the patterns polars matches without regular expressions: a
/// prefix (`'ab%'`), a suffix (`'%ab'`), or the whole value.
fn like(x: Expr, pattern: &Sql) -> Result<Expr, String> {
    let p = match pattern {
        Sql::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => s.as_str(),
            _ => return Err("`like` takes a pattern in single quotes".into()),
        },
        _ => return Err("`like` takes a pattern in single quotes".into()),
    };
    let unsupported = || {
        format!(
            "the pattern `{p}`: `like` matches a prefix ('ab%'), a suffix ('%ab') or a whole \
             value; `_` and a `%` inside are not supported"
        )
    };
    if p.contains('_') {
        return Err(unsupported());
    }
    let inner = p.trim_start_matches('%').trim_end_matches('%');
    if inner.contains('%') {
        return Err(unsupported());
    }
    let starts = p.starts_with('%');
    let ends = p.len() > inner.len() && p.ends_with('%');
    Ok(match (starts, ends) {
        (false, false) => x.eq(lit(p)),
        (false, true) => x.str().starts_with(lit(inner)),
        (true, false) => x.str().ends_with(lit(inner)),
        (true, true) if inner.is_empty() => x.is_not_null(),
        (true, true) => return Err(unsupported()),
    })
}
