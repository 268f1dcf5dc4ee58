//! Answer metrics in the SQuAD style: answers and golds are normalized
//! (lower case, punctuation and articles removed, spaces collapsed), then
//! compared as word sequences.
//!
//! Why "contains": folio's prompt asks for one short sentence, so a correct
//! answer is rarely the bare span. [`contains_answer`] counts an answer
//! correct when a gold answer's words appear in it, in order and adjacent;
//! [`exact_match`] and [`f1`] are the official strict scores.

/// SQuAD's normalization: lower case, no punctuation, no a/an/the, single spaces.
pub fn normalize(text: &str) -> String {
    words(text).join(" ")
}

fn words(text: &str) -> Vec<String> {
    let cleaned: String = text
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || c.is_whitespace())
        .collect();
    cleaned
        .split_whitespace()
        .filter(|w| !matches!(*w, "a" | "an" | "the"))
        .map(str::to_string)
        .collect()
}

/// Whether some gold answer's normalized words occur, contiguously, among
/// the prediction's (so gold "no" does not match inside "not").
pub fn contains_answer(prediction: &str, golds: &[String]) -> bool {
    let p = words(prediction);
    golds.iter().any(|g| {
        let g = words(g);
        !g.is_empty() && p.windows(g.len()).any(|w| w == g.as_slice())
    })
}

/// Whether the normalized prediction equals a normalized gold answer.
pub fn exact_match(prediction: &str, golds: &[String]) -> bool {
    let p = normalize(prediction);
    golds.iter().any(|g| normalize(g) == p)
}

/// The best word-overlap F1 of the prediction against any gold answer.
pub fn f1(prediction: &str, golds: &[String]) -> f64 {
    let p = words(prediction);
    golds
        .iter()
        .map(|g| {
            let g = words(g);
            let mut rest = g.clone();
            let mut common = 0usize;
            for w in &p {
                if let Some(i) = rest.iter().position(|x| x == w) {
                    rest.swap_remove(i);
                    common += 1;
                }
            }
            if common == 0 {
                return 0.0;
            }
            let precision = common as f64 / p.len() as f64;
            let recall = common as f64 / g.len() as f64;
            2.0 * precision * recall / (precision + recall)
        })
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn squad_normalization_and_scores() {
        assert_eq!(
            normalize("The  Eiffel-Tower, in Paris!"),
            "eiffeltower in paris"
        );
        assert!(contains_answer(
            "It was built in 1887 by Solberg.",
            &g(&["1887"])
        ));
        assert!(contains_answer(
            "The Normans came from Normandy.",
            &g(&["normandy"])
        ));
        assert!(!contains_answer("That is not stated.", &g(&["no"])));
        assert!(contains_answer("No, they are not.", &g(&["no"])));
        assert!(exact_match("the France.", &g(&["France"])));
        assert!((f1("in France", &g(&["France"])) - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(f1("Germany", &g(&["France"])), 0.0);
    }
}
