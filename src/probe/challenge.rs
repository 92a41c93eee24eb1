//! The challenge: a question whose answer the reply must contain, so a relay answering 200
//! with canned text is caught.
//!
//! Contract (shared with the mock upstream): the prompt contains exactly one expression
//! `A + B` of decimal integers and the expected answer is the sum. A and B are drawn from
//! 11..=99, so the sum ranges over 177 values with no value more likely than 1/89 (≈ 1.1 %):
//! a canned reply carrying any fixed number passes at most that often. The sum's digits never
//! appear in the prompt, so an echo of the prompt fails.

/// Longest reply (in characters, trimmed) that still counts as a short answer.
pub(super) const MAX_REPLY_CHARS: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Challenge {
    pub prompt: String,
    /// `None` when the monitor has `challenge = false`: any non-empty text passes.
    pub answer: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Check {
    Pass,
    Empty,
    Mismatch(String),
}

impl Challenge {
    pub(super) fn new(rng: &mut fastrand::Rng, verify: bool) -> Challenge {
        if !verify {
            return Challenge {
                prompt: "Reply with one short word.".to_owned(),
                answer: None,
            };
        }
        loop {
            let a = rng.u32(11..=99);
            let b = rng.u32(11..=99);
            let sum = a + b;
            let prompt = format!("What is {a} + {b}? Reply with only the number.");
            if !prompt.contains(&sum.to_string()) {
                return Challenge {
                    prompt,
                    answer: Some(sum),
                };
            }
        }
    }

    /// Judges the visible reply text.
    pub(super) fn check(&self, reply: &str) -> Check {
        let text = reply.trim();
        if text.is_empty() {
            return Check::Empty;
        }
        let Some(answer) = self.answer else {
            return Check::Pass;
        };
        let chars = text.chars().count();
        if chars > MAX_REPLY_CHARS {
            return Check::Mismatch(format!(
                "expected a short answer {answer}, got {chars} characters"
            ));
        }
        let want = answer.to_string();
        if number_tokens(text).any(|t| t == want) {
            Check::Pass
        } else {
            Check::Mismatch(format!("expected {answer}, got: {text}"))
        }
    }
}

/// Standalone integers in `text`: maximal runs of digits (ASCII or full-width), not part of a
/// decimal number (`42.5` is not 42, `42.` is).
fn number_tokens(text: &str) -> impl Iterator<Item = String> + '_ {
    let chars: Vec<char> = text.chars().collect();
    let digit = |c: char| -> Option<char> {
        if c.is_ascii_digit() {
            Some(c)
        } else if ('０'..='９').contains(&c) {
            char::from_u32(c as u32 - '０' as u32 + '0' as u32)
        } else {
            None
        }
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if digit(chars[i]).is_none() {
            i += 1;
            continue;
        }
        let start = i;
        let mut s = String::new();
        while i < chars.len() {
            match digit(chars[i]) {
                Some(d) => s.push(d),
                None => break,
            }
            i += 1;
        }
        let before_decimal =
            start >= 2 && chars[start - 1] == '.' && digit(chars[start - 2]).is_some();
        let after_decimal = i + 1 < chars.len()
            && (chars[i] == '.' || chars[i] == ',')
            && digit(chars[i + 1]).is_some();
        if !before_decimal && !after_decimal {
            out.push(s.trim_start_matches('0').to_owned());
        }
    }
    out.into_iter()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(answer: u32) -> Challenge {
        Challenge {
            prompt: String::new(),
            answer: Some(answer),
        }
    }

    #[test]
    fn short_replies_with_the_answer_pass() {
        for reply in [
            "42",
            "The answer is 42.",
            "**42**",
            "答案是 42",
            "42\n",
            "= 42",
            "４２",
            "Sure! 42",
        ] {
            assert_eq!(ch(42).check(reply), Check::Pass, "{reply}");
        }
    }

    #[test]
    fn wrong_echo_empty_canned_and_essays_fail() {
        let c = Challenge::new(&mut fastrand::Rng::with_seed(1), true);
        assert!(
            matches!(c.check(&c.prompt), Check::Mismatch(_)),
            "echo: {}",
            c.prompt
        );
        assert_eq!(ch(42).check("  \n"), Check::Empty);
        for reply in [
            "142",
            "4200",
            "42.5",
            "3.42",
            "Hello! How can I help you today?",
            "41",
        ] {
            assert!(matches!(ch(42).check(reply), Check::Mismatch(_)), "{reply}");
        }
        let essay = format!("{} 42 {}", "word ".repeat(50), "more ".repeat(20));
        assert!(matches!(ch(42).check(&essay), Check::Mismatch(_)));
    }

    #[test]
    fn the_answer_never_appears_in_the_prompt() {
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..5_000 {
            let c = Challenge::new(&mut rng, true);
            let a = c.answer.unwrap();
            assert!(!c.prompt.contains(&a.to_string()));
            assert!(c.prompt.contains(" + "));
        }
    }

    #[test]
    fn a_canned_number_passes_at_most_two_percent_of_challenges() {
        let mut rng = fastrand::Rng::with_seed(42);
        let challenges: Vec<Challenge> = (0..20_000)
            .map(|_| Challenge::new(&mut rng, true))
            .collect();
        for n in 0..300u32 {
            let canned = format!("The answer is {n}.");
            let passes = challenges
                .iter()
                .filter(|c| c.check(&canned) == Check::Pass)
                .count();
            let rate = passes as f64 / challenges.len() as f64;
            assert!(rate <= 0.02, "canned {n} passes {rate}");
        }
    }

    #[test]
    fn without_a_challenge_any_text_passes() {
        let c = Challenge::new(&mut fastrand::Rng::with_seed(1), false);
        assert_eq!(c.check("OK"), Check::Pass);
        assert_eq!(c.check(""), Check::Empty);
    }
}
