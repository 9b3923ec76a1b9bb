//! Snippets: the text of a hit that matched, its matching words marked `«…»`, cut to a window
//! around the first mark when long. Computed here rather than in SQL: it is per hit (at most 100)
//! and string work that PostgreSQL would only do slower and less readably.
//!
//! A word of the query marks, in order of preference: every place where it starts a word
//! ("hir" marks «hiring»), else every word containing it ("venue" marks «revenue»), else every
//! word close to it by trigrams, as pg_trgm measures them (`donwside` marks «Downside»). The
//! comparison is literal and case-insensitive: `%`, `_` and `\` are characters like others.

use std::collections::HashSet;

/// Words at least this similar (shared trigrams over all trigrams, pg_trgm's measure) count as a
/// typo of each other; the same threshold as `fv_search`'s `pg_trgm.word_similarity_threshold`.
pub const FUZZY_SIMILARITY: f64 = 0.35;
/// Longest snippet, in characters (marks and ellipses aside).
pub const WINDOW: usize = 160;
/// Characters kept before the first mark when a long text is cut.
const LEAD: usize = 40;

/// Marked spans of a text: `(start, end)` in characters, sorted, not overlapping.
type Spans = Vec<(usize, usize)>;

/// The snippet of the first of `fields` in which the most words of `query` mark something
/// (fields in order of preference: title, key, description); `None` when no word marks anything
/// in any of them (a match of the query's trigrams across words, which no single word explains).
pub fn snippet<'a>(query: &str, fields: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let words: Vec<Vec<char>> = query
        .split_whitespace()
        .map(|w| w.chars().map(fold).collect())
        .collect();
    let mut best: Option<(usize, Vec<char>, Spans)> = None;
    for field in fields {
        let text: Vec<char> = field.chars().collect();
        let (matched, spans) = marks(&text, &words);
        if matched > 0 && best.as_ref().is_none_or(|(most, ..)| matched > *most) {
            best = Some((matched, text, spans));
        }
    }
    best.map(|(_, text, spans)| render(&text, &spans))
}

/// One character, case-folded (its first lower-case form: lengths in characters never change).
fn fold(c: char) -> char {
    c.to_lowercase().next().unwrap_or(c)
}

/// Whether `word` (folded) is at `at` in `text`.
fn is_at(text: &[char], at: usize, word: &[char]) -> bool {
    text.len() >= at + word.len()
        && text[at..at + word.len()]
            .iter()
            .zip(word)
            .all(|(t, w)| fold(*t) == *w)
}

/// The end of the word that `end` is inside of (or `end` itself, after a non-alphanumeric).
fn word_end(text: &[char], mut end: usize) -> usize {
    if end > 0 && text[end - 1].is_alphanumeric() {
        while end < text.len() && text[end].is_alphanumeric() {
            end += 1;
        }
    }
    end
}

/// The start of the word that `start` is inside of.
fn word_start(text: &[char], mut start: usize) -> usize {
    if start < text.len() && text[start].is_alphanumeric() {
        while start > 0 && text[start - 1].is_alphanumeric() {
            start -= 1;
        }
    }
    start
}

/// How many of `words` mark something in `text`, and the marked spans, sorted and merged.
fn marks(text: &[char], words: &[Vec<char>]) -> (usize, Spans) {
    let mut spans = Vec::new();
    let mut matched = 0;
    for word in words.iter().filter(|w| !w.is_empty()) {
        let at: Vec<usize> = (0..text.len()).filter(|&i| is_at(text, i, word)).collect();
        let starts: Vec<usize> = at
            .iter()
            .copied()
            .filter(|&i| i == 0 || !text[i - 1].is_alphanumeric())
            .collect();
        let found: Vec<(usize, usize)> = if !starts.is_empty() {
            starts
                .into_iter()
                .map(|i| (i, word_end(text, i + word.len())))
                .collect()
        } else if !at.is_empty() {
            at.into_iter()
                .map(|i| (word_start(text, i), word_end(text, i + word.len())))
                .collect()
        } else {
            fuzzy(text, word)
        };
        if !found.is_empty() {
            matched += 1;
            spans.extend(found);
        }
    }
    spans.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
    for (start, end) in spans {
        match merged.last_mut() {
            Some(last) if start < last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    (matched, merged)
}

/// The words of `text` (runs of letters and digits) close to a word of `word`'s letters and
/// digits by [`similarity`].
fn fuzzy(text: &[char], word: &[char]) -> Spans {
    let parts: Vec<HashSet<[char; 3]>> = runs(word).map(|(s, e)| trigrams(&word[s..e])).collect();
    runs(text)
        .filter(|&(s, e)| {
            let candidate = trigrams(&text[s..e]);
            parts
                .iter()
                .any(|part| similarity(part, &candidate) >= FUZZY_SIMILARITY)
        })
        .collect()
}

/// The runs of alphanumeric characters of `text`, as `(start, end)`.
fn runs(text: &[char]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < text.len() && !text[i].is_alphanumeric() {
            i += 1;
        }
        let start = i;
        while i < text.len() && text[i].is_alphanumeric() {
            i += 1;
        }
        (start < i).then_some((start, i))
    })
}

/// pg_trgm's trigrams of one word: folded, padded with two spaces before and one after.
fn trigrams(word: &[char]) -> HashSet<[char; 3]> {
    let padded: Vec<char> = [' ', ' ']
        .into_iter()
        .chain(word.iter().map(|c| fold(*c)))
        .chain([' '])
        .collect();
    padded.windows(3).map(|w| [w[0], w[1], w[2]]).collect()
}

/// Shared trigrams over all trigrams of the two.
fn similarity(a: &HashSet<[char; 3]>, b: &HashSet<[char; 3]>) -> f64 {
    let shared = a.intersection(b).count();
    let all = a.len() + b.len() - shared;
    if all == 0 {
        return 0.0;
    }
    // Trigram sets of words of at most 200 characters: exact in f64.
    #[allow(clippy::cast_precision_loss, reason = "small counts")]
    let ratio = shared as f64 / all as f64;
    ratio
}

/// `text` with `spans` marked, cut to [`WINDOW`] characters around the first span when longer
/// (at word boundaries, `…` where text was left out).
fn render(text: &[char], spans: &[(usize, usize)]) -> String {
    let (mut from, mut to) = (0, text.len());
    if text.len() > WINDOW {
        let first = spans.first().map_or(0, |s| s.0);
        from = first.saturating_sub(LEAD);
        if from > 0 {
            // Start after a space, unless the lead holds none.
            from = (from..first)
                .find(|&i| text[i - 1].is_whitespace())
                .unwrap_or(from);
        }
        to = (from + WINDOW).min(text.len());
        if to < text.len() {
            to = (from + 1..to)
                .rev()
                .find(|&i| text[i].is_whitespace())
                .filter(|&i| i > first)
                .unwrap_or(to);
        }
    }
    let mut out = String::with_capacity(to - from + 8);
    if from > 0 {
        out.push('…');
    }
    let mut at = from;
    for &(start, end) in spans {
        let (start, end) = (start.max(from), end.min(to));
        if start >= end || start < at {
            continue;
        }
        out.extend(&text[at..start]);
        out.push('«');
        out.extend(&text[start..end]);
        out.push('»');
        at = end;
    }
    out.extend(&text[at..to]);
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    if to < text.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(query: &str, text: &str) -> Option<String> {
        snippet(query, [text])
    }

    #[test]
    fn words_are_marked_where_they_start_a_word() {
        assert_eq!(
            one("downside hir", "Downside – hiring freeze").as_deref(),
            Some("«Downside» – «hiring» freeze")
        );
        assert_eq!(
            one("growth", "revenue_growth").as_deref(),
            Some("revenue_«growth»")
        );
        // A word inside another only when it starts none.
        assert_eq!(one("venue", "Revenue").as_deref(), Some("«Revenue»"));
    }

    #[test]
    fn typos_mark_the_closest_words() {
        assert_eq!(
            one("donwside", "Downside – hiring freeze").as_deref(),
            Some("«Downside» – hiring freeze")
        );
        assert_eq!(one("zzz", "Downside"), None);
    }

    #[test]
    fn input_is_literal() {
        assert_eq!(
            one("10%", "Growth 10% cap, 10 per cent").as_deref(),
            Some("Growth «10%» cap, 10 per cent")
        );
        assert_eq!(one("5_0", "Plan 5_0").as_deref(), Some("Plan «5_0»"));
        assert_eq!(one(r"a\b", r"x a\b").as_deref(), Some(r"x «a\b»"));
    }

    #[test]
    fn the_field_where_most_words_match_is_chosen() {
        let got = snippet(
            "hiring freeze",
            ["Downside hiring", "A hiring freeze from Q3"],
        );
        assert_eq!(got.as_deref(), Some("A «hiring» «freeze» from Q3"));
        assert_eq!(
            snippet("hiring", ["Hiring plan", "hiring"]).as_deref(),
            Some("«Hiring» plan")
        );
    }

    #[test]
    fn long_text_is_cut_around_the_first_mark() {
        let text = format!(
            "{}needle {}",
            "lorem ipsum ".repeat(20),
            "dolor sit ".repeat(30)
        );
        let got = one("needle", &text).unwrap();
        assert!(got.starts_with('…') && got.ends_with('…'), "{got}");
        assert!(got.contains("«needle»"), "{got}");
        assert!(got.chars().count() <= WINDOW + 6, "{got}");
        assert!(!got.contains("  "), "{got}");
    }
}
