//! Arguments: the declaration of an argument table's keys (`ARG_KEYS`),
//! and each `args` entry read with it: its type, default, choices and
//! flags.

use serde_json::json;

use super::keys::{self, key, presentation, shape, Key, KeyOf};
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

/// Every key of an argument table, in the order of the reference's table
/// of argument keys, which is generated from this one (see `keys`). A key
/// may rely on those before it: `choices`, `default` and `required` are
/// read as the argument's `type`.
pub(crate) const ARG_KEYS: &[Key<Arg>] = &[
    key(
        "name",
        ["string", "none: every argument needs one", r#"`name = "target"`"#, "the name in templates; `--target` on the command line (underscores become dashes)"],
        || json!({ "type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$" }),
        // Read before the others (`arg`): their messages name the argument.
        |_, _, _, _| Ok(()),
    ),
    presentation(
        "help",
        ["string", "none", r#"`help = "Where to deploy"`"#, "shown by `tasker TASK --help`"],
        shape::string,
        |w, v, k, a| w.string(v, k).map(|value| a.help = Some(value)),
    ),
    key(
        "type",
        ["string", r#"`"string"`"#, r#"`type = "int"`"#, "`string`, `bool`, `int`, `float`, `list` or `count`"],
        || json!({ "enum": ArgType::NAMES }),
        |w, v, k, a| {
            let text = w.string(v, k)?;
            a.ty = ArgType::parse(&text).ok_or_else(|| {
                w.error(v.span(), format!("unknown argument type `{text}`"))
                    .with_label("unknown type")
                    .suggest(&text, ArgType::NAMES)
                    .with_help(format!("the types are {}", ArgType::NAMES.join(", ")))
            })?;
            Ok(())
        },
    ),
    key(
        "positional",
        ["bool", "`false`", "`positional = true`", "may also be given bare, in declaration order"],
        shape::boolean,
        |w, v, k, a| {
            a.positional = w.bool(v, k)?;
            if a.positional && matches!(a.ty, ArgType::Bool | ArgType::Count) {
                return Err(w
                    .error(v.span(), format!("a {} argument cannot be positional", a.ty.name()))
                    .with_label("not allowed here")
                    .with_help(format!("`{}` is set with {}", a.name, format_flag(&a.name))));
            }
            Ok(())
        },
    ),
    key(
        "choices",
        ["array", "none", r#"`choices = ["staging", "prod"]`"#, "the only values allowed"],
        || json!({ "type": "array" }),
        |w, v, k, a| choices(w, v, k, a.ty).map(|value| a.choices = value),
    ),
    key(
        "short",
        ["string (one letter or digit)", "none; a one-letter argument is its own short flag", r#"`short = "t"`"#, "a short flag: `-t`. An argument whose name is one letter (`k`) is set with `-k` only, never `--k`, as invoke shows it"],
        || json!({ "type": "string", "pattern": "^[A-Za-z0-9]$" }),
        |w, v, k, a| short(w, v, k).map(|value| a.short = Some(value)),
    ),
    key(
        "default",
        ["a value of the argument's type, or a template", "none: the argument is required (bool: `false`, count: `0`, list: empty)", r#"`default = 8080`, `default = "{{ branch }}"`"#, "the value when the argument is not given; a template is rendered then, with the vars, the task's `vars` and the arguments before it, and typed as if typed on the command line (help shows it as written)"],
        || json!({}),
        default,
    ),
    key(
        "required",
        ["bool", "`true` for a string, int or float without `default`", "`required = false`", "`false` makes it optional without a default (`none` in templates)"],
        shape::boolean,
        |w, v, k, a| required_key(w, v, a.ty, a.default.is_some(), k).map(|value| a.optional = !value),
    ),
    key(
        "env",
        ["string", "none", r#"`env = "DEPLOY_PORT"`"#, "take the default from this environment variable when it is set"],
        shape::string,
        |w, v, k, a| w.string(v, k).map(|value| a.env = Some(value)),
    ),
];

/// One argument table: its name first, then every other key in
/// `ARG_KEYS` order.
pub(super) fn arg(w: &Walker, item: &Value, task: &str) -> Result<Arg> {
    let table: &DeTable = w.table(item, format_args!("each entry of `args` of task `{task}`"))?;
    w.check_keys(
        table,
        keys::names(ARG_KEYS),
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
    let mut arg = Arg {
        span: w.span(name_value.span()),
        ty: ArgType::String,
        help: None,
        default: None,
        default_template: None,
        positional: false,
        // A one-letter argument is its own short flag (SPEC 1: `-k`).
        short: Some(&name)
            .filter(|n| n.len() == 1 && *n != "h")
            .and_then(|n| n.chars().next()),
        choices: Vec::new(),
        env: None,
        optional: false,
        name: name.clone(),
    };
    let entries: Vec<(&str, &Value)> = table
        .iter()
        .map(|(k, v)| (k.get_ref().as_ref(), v))
        .collect();
    keys::read_keys(w, ARG_KEYS, &entries, ("argument", &name), &mut arg)?;
    Ok(arg)
}

/// `short`: one letter or digit, not `h`.
fn short(w: &Walker, v: &Value, k: KeyOf) -> Result<char> {
    let text = w.string(v, k)?;
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some('h'), None) => Err(w
            .error(v.span(), "`-h` is reserved for the task's help")
            .with_label("reserved")),
        (Some(c), None) if c.is_ascii_alphanumeric() => Ok(c),
        _ => Err(w
            .error(v.span(), format!("{k} must be one letter or digit"))
            .with_label("not a single character")),
    }
}

/// `choices`: values of the argument's type (a list's are strings).
fn choices(w: &Walker, v: &Value, k: KeyOf, ty: ArgType) -> Result<Vec<ArgValue>> {
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
    let items = w.array(v, k)?;
    if items.is_empty() {
        return Err(w
            .error(v.span(), format!("{k} is empty"))
            .with_label("empty"));
    }
    items
        .iter()
        .map(|item| typed_value(w, item, element_ty, &format!("each entry of {k}")))
        .collect()
}

/// `default`: a value of the argument's type, one of its choices; or a
/// string with template syntax, rendered when the argument is not given
/// (SPEC 2), and its type checked then.
fn default(w: &Walker, v: &Value, k: KeyOf, a: &mut Arg) -> Result<()> {
    if matches!(v.get_ref(), DeValue::String(_)) {
        a.default_template = Some(w.template(v, k)?).filter(|t| !t.is_literal());
    }
    if let Some(t) = &a.default_template {
        a.default = Some(ArgValue::Str(t.source.clone()));
        return Ok(());
    }
    let default = typed_value(w, v, a.ty, k)?;
    let fits = match &default {
        ArgValue::List(items) => items
            .iter()
            .all(|i| a.choices.contains(&ArgValue::Str(i.clone()))),
        other => a.choices.contains(other),
    };
    if !a.choices.is_empty() && !fits {
        return Err(w
            .error(
                v.span(),
                format!(
                    "the default of argument `{}` is not one of its choices",
                    k.name
                ),
            )
            .with_label("not in `choices`")
            .with_help(format!(
                "the choices are {}",
                a.choices
                    .iter()
                    .map(ArgValue::display)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
    }
    a.default = Some(default);
    Ok(())
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
