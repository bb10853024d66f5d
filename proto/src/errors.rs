//! One way to say an error and its causes on one line, shared by the binary, the worker and the
//! cockpit: each thing said once. Typed errors often name their source in their own message, and
//! layers of rustls, hyper and tonic repeat their cause; joined naively, a message reads
//! `reading X: X: not found` or names the same refusal twice.

/// Joins `parts` (an error, then its causes) with `": "`, saying each thing once:
///
/// - a part already said (the text so far contains it) is left out;
/// - a part that contains everything said so far replaces it (it is the fuller message);
/// - a part that starts with the last word said, then `": "`, drops that repeat
///   (`reading X` then `X: not found` reads `reading X: not found`).
pub fn say_once<I, S>(parts: I) -> String
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut text = String::new();
    for part in parts {
        let mut part: String = part.into();
        let part_trimmed = part.trim();
        if part_trimmed.is_empty() || text.contains(part_trimmed) {
            continue;
        }
        if !text.is_empty() && part.contains(&text) {
            text = part;
            continue;
        }
        if let Some(subject) = text.rsplit(' ').next().filter(|s| !s.is_empty())
            && let Some(rest) = part.strip_prefix(&format!("{subject}: "))
        {
            part = rest.to_string();
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_thing_is_said_once() {
        assert_eq!(say_once(["reading x.csv", "x.csv: not found"]), "reading x.csv: not found");
        assert_eq!(say_once(["refused", "refused"]), "refused");
        assert_eq!(say_once(["tls: bad certificate", "bad certificate"]), "tls: bad certificate");
        assert_eq!(
            say_once(["transport error", "transport error: connection refused"]),
            "transport error: connection refused"
        );
        assert_eq!(say_once(["a", "b", "c"]), "a: b: c");
        assert_eq!(say_once(Vec::<String>::new()), "");
        assert_eq!(say_once(["", "only"]), "only");
    }
}
