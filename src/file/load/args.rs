//! Arguments: each `args` entry, its type, default, choices and flags.

use super::*;

pub(super) fn args(w: &Walker, value: &Value, task: &str) -> Result<Vec<Arg>> {
    let items = w.array(value, format_args!("`args` of task `{task}`"))?;
    let mut args: Vec<Arg> = Vec::new();
    for item in items {
        let arg = arg(w, item, task)?;
        if let Some(prev) = args.iter().find(|a| a.name == arg.name) {
            return Err(Error::at(
                &arg.span,
                format!("task `{task}` declares argument `{}` twice", arg.name),
            )
            .with_label("second declaration")
            .with_help(format!("the first is at line {}", prev.span.line_col().0)));
        }
        if let (Some(short), Some(prev)) = (
            arg.short,
            args.iter()
                .find(|a| a.short.is_some() && a.short == arg.short),
        ) {
            return Err(Error::at(
                &arg.span,
                format!(
                    "arguments `{}` and `{}` of task `{task}` share the short flag `-{short}`",
                    prev.name, arg.name
                ),
            )
            .with_label("clashing short flag"));
        }
        if arg.positional {
            if let Some(list) = args.iter().find(|a| a.positional && a.ty == ArgType::List) {
                return Err(Error::at(
                    &list.span,
                    format!(
                        "positional list `{}` of task `{task}` must be the last positional argument",
                        list.name
                    ),
                )
                .with_label("not last")
                .with_help(format!("move `{}` after `{}`", list.name, arg.name)));
            }
        }
        args.push(arg);
    }
    Ok(args)
}

/// Long by design: one argument table, key by key, with the checks that
/// relate keys to each other (type and default, choices, required).
pub(super) fn arg(w: &Walker, item: &Value, task: &str) -> Result<Arg> {
    let table: &DeTable = w.table(item, format_args!("each entry of `args` of task `{task}`"))?;
    w.check_keys(
        table,
        ARG_KEYS,
        format_args!("an argument of task `{task}`"),
    )?;
    let name_value = table.get("name").ok_or_else(|| {
        w.error(
            item.span(),
            format!("an argument of task `{task}` has no `name`"),
        )
        .with_label("needs `name`")
    })?;
    let name = w.string(name_value, "`name` of an argument")?;
    check_ident(w, &name, name_value.span(), "an argument")?;
    if name == "help" {
        return Err(w
            .error(
                name_value.span(),
                "`help` cannot name an argument: --help shows the task's help",
            )
            .with_label("reserved name"));
    }
    let what = |k: &'static str| KeyOf {
        key: k,
        owner: "argument",
        name: &name,
    };
    let ty = match table.get("type") {
        Some(v) => {
            let text = w.string(v, what("type"))?;
            ArgType::parse(&text).ok_or_else(|| {
                w.error(v.span(), format!("unknown argument type `{text}`"))
                    .with_label("unknown type")
                    .suggest(&text, ArgType::NAMES)
                    .with_help(format!("the types are {}", ArgType::NAMES.join(", ")))
            })?
        }
        None => ArgType::String,
    };
    let positional = table
        .get("positional")
        .map_or(Ok(false), |v| w.bool(v, what("positional")))?;
    if positional && matches!(ty, ArgType::Bool | ArgType::Count) {
        return Err(w
            .error(
                table["positional"].span(),
                format!("a {} argument cannot be positional", ty.name()),
            )
            .with_label("not allowed here")
            .with_help(format!("`{name}` is set with {}", format_flag(&name))));
    }
    let short = match table.get("short") {
        Some(v) => {
            let text = w.string(v, what("short"))?;
            let mut chars = text.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if c.is_ascii_alphanumeric() && c != 'h' => Some(c),
                (Some('h'), None) => {
                    return Err(w
                        .error(v.span(), "`-h` is reserved for the task's help")
                        .with_label("reserved"))
                }
                _ => {
                    return Err(w
                        .error(
                            v.span(),
                            format!("{} must be one letter or digit", what("short")),
                        )
                        .with_label("not a single character"))
                }
            }
        }
        // A one-letter argument is its own short flag (SPEC 1: `-k`).
        None if name.len() == 1 && name != "h" => name.chars().next(),
        None => None,
    };
    let help = table
        .get("help")
        .map(|v| w.string(v, what("help")))
        .transpose()?;
    let env = table
        .get("env")
        .map(|v| w.string(v, what("env")))
        .transpose()?;
    // A string default with template syntax is rendered when the
    // argument is not given (SPEC 2); its type is checked then.
    let default_template = match table.get("default") {
        Some(v) if matches!(v.get_ref(), DeValue::String(_)) => {
            Some(w.template(v, what("default"))?).filter(|t| !t.is_literal())
        }
        _ => None,
    };
    let default = match (table.get("default"), &default_template) {
        (Some(_), Some(t)) => Some(ArgValue::Str(t.source.clone())),
        (Some(v), None) => Some(typed_value(w, v, ty, what("default"))?),
        (None, _) => None,
    };
    let choices = match table.get("choices") {
        Some(v) => {
            if matches!(ty, ArgType::Bool | ArgType::Count) {
                return Err(w
                    .error(
                        v.span(),
                        format!("a {} argument cannot have choices", ty.name()),
                    )
                    .with_label("not allowed here"));
            }
            let element_ty = if ty == ArgType::List {
                ArgType::String
            } else {
                ty
            };
            let items = w.array(v, what("choices"))?;
            if items.is_empty() {
                return Err(w
                    .error(v.span(), format!("{} is empty", what("choices")))
                    .with_label("empty"));
            }
            items
                .iter()
                .map(|item| {
                    typed_value(
                        w,
                        item,
                        element_ty,
                        &format!("each entry of {}", what("choices")),
                    )
                })
                .collect::<Result<Vec<_>>>()?
        }
        None => Vec::new(),
    };
    if let (Some(default), false, None) = (&default, choices.is_empty(), &default_template) {
        let fits = match default {
            ArgValue::List(items) => items
                .iter()
                .all(|i| choices.contains(&ArgValue::Str(i.clone()))),
            other => choices.contains(other),
        };
        if !fits {
            return Err(w
                .error(
                    table["default"].span(),
                    format!("the default of argument `{name}` is not one of its choices"),
                )
                .with_label("not in `choices`")
                .with_help(format!(
                    "the choices are {}",
                    choices
                        .iter()
                        .map(ArgValue::display)
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
        }
    }
    let optional = match table.get("required") {
        Some(v) => !required_key(w, v, ty, default.is_some(), what("required"))?,
        None => false,
    };
    Ok(Arg {
        span: w.span(name_value.span()),
        name,
        ty,
        help,
        default,
        default_template,
        positional,
        short,
        choices,
        env,
        optional,
    })
}

/// `required = true | false`, which only a string, int or float argument
/// without a default can take: the others are optional already.
pub(super) fn required_key(
    w: &Walker,
    v: &Value,
    ty: ArgType,
    has_default: bool,
    what: impl std::fmt::Display + Copy,
) -> Result<bool> {
    let required = w.bool(v, what)?;
    if matches!(ty, ArgType::Bool | ArgType::Count | ArgType::List) {
        return Err(w
            .error(
                v.span(),
                format!("a {} argument cannot set `required`", ty.name()),
            )
            .with_label("not allowed here")
            .with_help(format!(
                "a {} argument is optional already: left out, it is {}",
                ty.name(),
                match ty {
                    ArgType::Bool => "false",
                    ArgType::Count => "0",
                    _ => "empty",
                }
            )));
    }
    if has_default {
        return Err(w
            .error(
                v.span(),
                "an argument with a `default` cannot set `required`",
            )
            .with_label("not allowed with `default`")
            .with_help("an argument with a default is optional; remove `required`"));
    }
    Ok(required)
}

pub(super) fn format_flag(name: &str) -> String {
    format!("--{}", name.replace('_', "-"))
}

/// A TOML value as an argument value of type `ty`.
pub(super) fn typed_value(
    w: &Walker,
    value: &Value,
    ty: ArgType,
    what: impl std::fmt::Display + Copy,
) -> Result<ArgValue> {
    Ok(match ty {
        ArgType::String => ArgValue::Str(w.string(value, what)?),
        ArgType::Bool => ArgValue::Bool(w.bool(value, what)?),
        ArgType::Int => ArgValue::Int(w.int(value, what)?),
        ArgType::Float => ArgValue::Float(w.float(value, what)?),
        ArgType::Count => {
            let n = w.int(value, what)?;
            ArgValue::Count(u64::try_from(n).map_err(|_| {
                w.error(value.span(), format!("{what} must be 0 or more"))
                    .with_label("negative")
            })?)
        }
        ArgType::List => ArgValue::List(
            w.strings(value, what)?
                .into_iter()
                .map(|(s, _)| s)
                .collect(),
        ),
    })
}
