//! Text folding and ranked word search shared by the code searches.

/// Lower-case, accent-free words (letters and digits) of a text: « Déchets d'Élevage » → [dechets, d, elevage].
pub fn words(text: &str) -> Vec<String> {
    fold(text)
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Lower-case, accent-free form of a text.
pub fn fold(text: &str) -> String {
    deunicode::deunicode(text).to_lowercase()
}

/// A light stem of a folded word, for French and English trade words: the plural (`s`, `x`) and
/// one derivational ending (`-erie`, `-ement`, `-ation`, `-eur`, `-ier`, `-e`…) are dropped when
/// at least four letters remain, so « fromagerie » and « fromage », « emballages » and
/// « emballage » share a stem.
pub fn stem(word: &str) -> &str {
    const MIN: usize = 4;
    let mut w = word;
    for plural in ["s", "x"] {
        if let Some(rest) = w.strip_suffix(plural)
            && rest.len() >= MIN
        {
            w = rest;
            break;
        }
    }
    for suffix in [
        "eries", "erie", "ements", "ement", "ations", "ation", "euses", "euse", "eurs", "eur",
        "ieres", "iere", "iers", "ier", "ing", "ers", "er", "es", "e",
    ] {
        if let Some(rest) = w.strip_suffix(suffix)
            && rest.len() >= MIN
        {
            return rest;
        }
    }
    w
}

/// Whether two folded words are the same word, or share a stem (see [`stem`]).
pub fn same_stem(a: &str, b: &str) -> bool {
    a == b || (a.len() >= 4 && b.len() >= 4 && stem(a) == stem(b))
}

/// How well `query` words match a document's words: every query word must be a prefix of some
/// document word or share its stem, else `None`. Whole-word hits count more than stem hits, stem
/// hits more than prefix hits, and earlier documents fields (`weights`) more than later ones.
pub fn word_score(query: &[String], fields: &[(&[String], f64)]) -> Option<f64> {
    if query.is_empty() {
        return None;
    }
    let mut total = 0.0;
    for q in query {
        let mut best = 0.0f64;
        for (field_words, weight) in fields {
            for w in field_words.iter() {
                if w == q {
                    best = best.max(2.0 * weight);
                } else if same_stem(w, q) {
                    best = best.max(1.5 * weight);
                } else if w.starts_with(q.as_str()) {
                    best = best.max(1.0 * weight);
                }
            }
        }
        if best == 0.0 {
            return None;
        }
        total += best;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_accents_and_case() {
        assert_eq!(words("Déchets d'ÉLEVAGE"), vec!["dechets", "d", "elevage"]);
    }

    #[test]
    fn stems_join_forms_of_a_word() {
        assert_eq!(stem("fromagerie"), stem("fromage"));
        assert_eq!(stem("emballages"), stem("emballage"));
        assert_eq!(stem("broyeurs"), stem("broyeur"));
        assert_ne!(stem("scierie"), stem("sciure"));
        let doc = words("Fabrication de fromage");
        assert!(word_score(&words("fromagerie"), &[(doc.as_slice(), 1.0)]).is_some());
    }

    #[test]
    fn every_query_word_must_match() {
        let doc = words("cendres volantes de charbon");
        let fields = [(doc.as_slice(), 1.0)];
        assert!(word_score(&words("cendre"), &fields).is_some());
        assert!(word_score(&words("cendres bois"), &fields).is_none());
        let exact = word_score(&words("cendres"), &fields).unwrap_or_default();
        let prefix = word_score(&words("cend"), &fields).unwrap_or_default();
        assert!(exact > prefix);
    }
}
