//! `matrix`: the axes and their values.

use super::*;

pub(super) fn matrix(
    w: &Walker,
    value: &Value,
    what: impl std::fmt::Display + Copy,
) -> Result<Vec<MatrixAxis>> {
    let table = w.table(value, what)?;
    let mut axes = Vec::new();
    for (key, value) in table.iter() {
        let name = key.get_ref().to_string();
        check_ident(w, &name, key.span(), "a matrix entry")?;
        let values = match value.get_ref() {
            DeValue::String(_) => {
                MatrixValues::Template(w.template(value, format_args!("matrix entry `{name}`"))?)
            }
            DeValue::Array(items) => {
                if items.is_empty() {
                    return Err(w
                        .error(value.span(), format!("matrix entry `{name}` has no values"))
                        .with_label("empty"));
                }
                MatrixValues::List(
                    items
                        .iter()
                        .map(|item| literal_value(w, item, format_args!("matrix entry `{name}`")))
                        .collect::<Result<_>>()?,
                )
            }
            _ => {
                return Err(w.wrong_type(
                    value,
                    &format!("matrix entry `{name}`"),
                    "an array of values or a template string",
                ))
            }
        };
        axes.push(MatrixAxis { name, values });
    }
    // Arrays fix the size now; an axis that is a template is counted when
    // it is rendered (`graph`), against the same limit.
    let fixed = axes.iter().map(|axis| match &axis.values {
        MatrixValues::List(values) => values.len(),
        MatrixValues::Template(_) => 1,
    });
    if let Err(size) = matrix_size(fixed) {
        return Err(w
            .error(
                value.span(),
                format!("{what} expands to {size} runs, more than the {MAX_MATRIX_RUNS} allowed"),
            )
            .with_label("too many combinations"));
    }
    Ok(axes)
}
