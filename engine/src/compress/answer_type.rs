//! The kind of answer a question asks for ("when" wants a date or number,
//! "who" a name), so the coarse stage can prefer sentences that hold one.

use super::units::{is_name_or_number, Layout};

/// What a question's answer looks like, when its wording says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AnswerType {
    /// A date, year, count or amount.
    Number,
    /// A person's or place's name.
    Name,
}

/// The answer type the question's wording asks for, if any.
pub(crate) fn expected(question: &str) -> Option<AnswerType> {
    let q = format!(" {} ", question.to_lowercase());
    const NUMBER: &[&str] = &[
        " when ",
        " what year",
        " which year",
        " how many",
        " how much",
        " how long",
        " how old",
        " how far",
        " how large",
        " how big",
        " how high",
        " what percentage",
        " what century",
        " what decade",
        " what date",
        " what time",
    ];
    const NAME: &[&str] = &[" who ", " whom ", " whose ", " where "];
    if NUMBER.iter().any(|p| q.contains(p)) {
        Some(AnswerType::Number)
    } else if NAME.iter().any(|p| q.contains(p)) {
        Some(AnswerType::Name)
    } else {
        None
    }
}

/// Whether unit `u` holds a word of type `kind` that is not a question word
/// (its first word, capitalised by position, does not count as a name).
pub(crate) fn unit_has(text: &str, layout: &Layout, u: usize, kind: AnswerType) -> bool {
    let range = layout.units[u].words.clone();
    let first = range.start;
    range.filter(|w| !layout.words[*w].question).any(|w| {
        let span = layout.words[w].span;
        let word = &text[span.start..span.end];
        match kind {
            AnswerType::Number => is_number_like(word),
            AnswerType::Name => w != first && is_name_or_number(word) && !is_number_like(word),
        }
    })
}

/// Digits, month names and number words.
fn is_number_like(word: &str) -> bool {
    const WORDS: &[&str] = &[
        "january",
        "february",
        "march",
        "april",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "twenty",
        "thirty",
        "forty",
        "fifty",
        "hundred",
        "hundreds",
        "thousand",
        "thousands",
        "million",
        "millions",
        "billion",
        "dozen",
        "century",
    ];
    let core = word
        .trim_matches(|c: char| !c.is_alphanumeric())
        .to_lowercase();
    core.chars().any(|c| c.is_ascii_digit()) || WORDS.contains(&core.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn question_wording_gives_the_type() {
        assert_eq!(expected("When did Holden close?"), Some(AnswerType::Number));
        assert_eq!(
            expected("In what year was it built?"),
            Some(AnswerType::Number)
        );
        assert_eq!(
            expected("How many people live there?"),
            Some(AnswerType::Number)
        );
        assert_eq!(expected("Who improved the pump?"), Some(AnswerType::Name));
        assert_eq!(expected("Where did they settle?"), Some(AnswerType::Name));
        assert_eq!(expected("What is located on the site?"), None);
        assert!(is_number_like("1887,") && !is_number_like("May"));
        assert!(is_number_like("October") && is_number_like("three"));
    }
}
