//! Word search as the lists offer it: every word of the query, in any case, somewhere in the
//! fields. One rule for the browser's live filter and the server's search, so both find the same.

/// Whether every whitespace-separated word of `query` occurs (case-insensitively) in one of
/// `fields`. An empty query finds everything.
pub fn every_word_in(query: &str, fields: &[&str]) -> bool {
    let fields: Vec<String> = fields.iter().map(|f| f.to_lowercase()).collect();
    query.split_whitespace().all(|word| {
        let word = word.to_lowercase();
        fields.iter().any(|f| f.contains(&word))
    })
}

/// The query as the lists take it: trimmed, `None` when nothing is left.
pub fn query(raw: Option<&str>) -> Option<&str> {
    raw.map(str::trim).filter(|q| !q.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_in_any_field_in_any_case() {
        let fields = ["Acme Foods", "acme-foods", "CC-1042"];
        assert!(every_word_in("acme", &fields));
        assert!(every_word_in("  FOODS   cc-10 ", &fields), "every word, any case, anywhere");
        assert!(every_word_in("", &fields));
        assert!(!every_word_in("acme drinks", &fields), "one word missing");
        assert!(!every_word_in("x", &[]));
    }

    #[test]
    fn blank_queries_are_none() {
        assert_eq!(query(None), None);
        assert_eq!(query(Some("  ")), None);
        assert_eq!(query(Some(" acme ")), Some("acme"));
    }
}
