//! The challenge: a question whose answer the reply must give, so a relay answering 200
//! with canned text is caught — including a fake that answers every probe with one fixed list
//! of the likeliest sums.
//!
//! Contract (shared with the mock upstream): the prompt contains exactly one expression
//! `A + B` of decimal integers and the expected answer is the sum. A and B are drawn from
//! 11..=99 (pairs whose sum's digits appear in the prompt are redrawn), so no sum is more
//! likely than 89 of 7 921 pairs (≈ 1.12 %).
//!
//! Only the reply's **final** number counts, and a reply carrying more than
//! [`MAX_NUMBERS`] numbers is a mismatch: a fixed reply then has one fixed final number, so it
//! passes at most as often as the likeliest sum (≈ 1.12 %), however many candidates it lists.
//! Real answers keep passing: "42", "The answer is 42.", "17 + 25 = 42", "**42**", "答案是 42",
//! "17 + 25 = 42, so the answer is 42" (four numbers, the last one the answer).

/// Longest reply (in characters, trimmed) that still counts as a short answer.
pub(super) const MAX_REPLY_CHARS: usize = 200;
/// Most numbers a reply may carry: "17 + 25 = 42, so the answer is 42" has four.
pub(super) const MAX_NUMBERS: usize = 4;
/// The operands' range: two-digit numbers, so every sum has two or three digits.
const OPERANDS: std::ops::RangeInclusive<u32> = 11..=99;

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
            if let Some(c) = Challenge::of(rng.u32(OPERANDS), rng.u32(OPERANDS)) {
                return c;
            }
        }
    }

    /// The challenge `a + b`, or `None` when the sum's digits appear in the prompt (an echo of
    /// the prompt must never pass).
    fn of(a: u32, b: u32) -> Option<Challenge> {
        let sum = a + b;
        let prompt = format!("What is {a} + {b}? Reply with only the number.");
        (!prompt.contains(&sum.to_string())).then_some(Challenge {
            prompt,
            answer: Some(sum),
        })
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
        let numbers = numbers(text);
        if numbers.len() > MAX_NUMBERS {
            return Check::Mismatch(format!(
                "expected {answer}, got {} numbers (at most {MAX_NUMBERS} allowed): {text}",
                numbers.len()
            ));
        }
        match numbers.last() {
            Some(Number::Integer(n)) if *n == answer.to_string() => Check::Pass,
            Some(_) => Check::Mismatch(format!(
                "expected {answer} as the final number, got: {text}"
            )),
            None => Check::Mismatch(format!("expected {answer}, got: {text}")),
        }
    }
}

/// A number in a reply: an integer (digits without leading zeros) or anything decimal
/// (`42.5`, `3,14`), which never equals an integer answer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Number {
    Integer(String),
    Decimal,
}

/// ASCII or full-width decimal digit.
fn digit(c: char) -> Option<char> {
    if c.is_ascii_digit() {
        Some(c)
    } else if ('０'..='９').contains(&c) {
        char::from_u32(c as u32 - '０' as u32 + '0' as u32)
    } else {
        None
    }
}

/// The numbers in `text`, in order: maximal runs of digits joined by a decimal point or comma
/// (`42.5` is one decimal number, not 42; `42.` and `42, so` end an integer).
fn numbers(text: &str) -> Vec<Number> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if digit(chars[i]).is_none() {
            i += 1;
            continue;
        }
        let mut s = String::new();
        let mut decimal = false;
        loop {
            while let Some(d) = chars.get(i).copied().and_then(digit) {
                s.push(d);
                i += 1;
            }
            let joined = matches!(chars.get(i), Some('.' | ','))
                && chars.get(i + 1).copied().and_then(digit).is_some();
            if !joined {
                break;
            }
            decimal = true;
            i += 1;
        }
        out.push(if decimal {
            Number::Decimal
        } else {
            let t = s.trim_start_matches('0');
            Number::Integer(if t.is_empty() { "0" } else { t }.to_owned())
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ch(answer: u32) -> Challenge {
        Challenge {
            prompt: String::new(),
            answer: Some(answer),
        }
    }

    /// Every challenge `new` can draw, each equally likely (rejection sampling over uniform
    /// pairs keeps the accepted pairs uniform): the exact distribution, no sampling error.
    fn all_challenges() -> Vec<Challenge> {
        OPERANDS
            .flat_map(|a| OPERANDS.map(move |b| (a, b)))
            .filter_map(|(a, b)| Challenge::of(a, b))
            .collect()
    }

    /// The exact share of challenges a fixed reply passes.
    fn pass_rate(all: &[Challenge], reply: &str) -> f64 {
        let passes = all.iter().filter(|c| c.check(reply) == Check::Pass).count();
        passes as f64 / all.len() as f64
    }

    #[test]
    fn the_ways_real_models_answer_pass() {
        for reply in [
            "42",
            "The answer is 42.",
            "17 + 25 = 42",
            "**42**",
            "答案是 42",
            "17 + 25 = 42, so the answer is 42",
            "42\n",
            "= 42",
            "４２",
            "Sure! 42",
        ] {
            assert_eq!(ch(42).check(reply), Check::Pass, "{reply}");
        }
    }

    #[test]
    fn wrong_echo_empty_canned_lists_and_essays_fail() {
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
            // The answer among others, but not last.
            "42 or 43",
            "The answer is 42, not 41.",
            // Five numbers: a list of candidates, even with the answer last.
            "40 41 42 43 42",
            "110 99 100 101 42",
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
    fn one_fixed_number_passes_at_most_the_likeliest_sums_share() {
        let all = all_challenges();
        let worst = (0..300u32)
            .map(|n| pass_rate(&all, &format!("The answer is {n}.")))
            .fold(0.0, f64::max);
        // 89 of 7 921 pairs give 110: the floor any fixed number reaches.
        assert!(
            worst > 0.011 && worst <= 0.012,
            "worst single number {worst}"
        );
    }

    #[test]
    fn the_fake_relays_list_of_likeliest_sums_fails_everywhere() {
        let all = all_challenges();
        let likeliest: Vec<String> = (95..=125).map(|n| n.to_string()).collect();
        for reply in [
            likeliest.join(" "),
            likeliest.join(", "),
            likeliest.join("\n"),
            format!(
                "| n | sum |\n{}",
                likeliest
                    .iter()
                    .map(|n| format!("| {n} |\n"))
                    .collect::<String>()
            ),
            "Between 100 and 120: 100 101 102 103 104 105 106 107 108 109 110".to_owned(),
        ] {
            assert_eq!(pass_rate(&all, &reply), 0.0, "{reply}");
        }
    }

    /// A fixed reply of the shapes a fake would try: numbers in the range sums take, joined
    /// by separators a list, a range or a table would use, with words around them.
    fn fixed_reply() -> impl Strategy<Value = String> {
        let number = prop_oneof![3 => 20u32..=200, 1 => 0u32..1000].prop_map(|n| n.to_string());
        let sep = prop_oneof![
            Just(" "),
            Just(", "),
            Just("\n"),
            Just(" | "),
            Just(" - "),
            Just(" to "),
            Just(" or "),
            Just("; "),
            Just(" = "),
            Just(" + "),
        ];
        let words = prop_oneof![
            Just(""),
            Just("The answer is "),
            Just("**"),
            Just("答案是 "),
            Just("Sums: "),
            Just("| a | b | sum |\n"),
        ];
        (words, proptest::collection::vec((number, sep), 1..40)).prop_map(|(w, parts)| {
            let mut s = w.to_owned();
            for (n, sep) in parts {
                s.push_str(&n);
                s.push_str(sep);
            }
            s
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn no_fixed_reply_passes_more_than_1_2_percent(reply in fixed_reply()) {
            static ALL: std::sync::LazyLock<Vec<Challenge>> =
                std::sync::LazyLock::new(all_challenges);
            let rate = pass_rate(&ALL, &reply);
            prop_assert!(rate <= 0.012, "{reply:?} passes {rate}");
        }
    }

    #[test]
    fn without_a_challenge_any_text_passes() {
        let c = Challenge::new(&mut fastrand::Rng::with_seed(1), false);
        assert_eq!(c.check("OK"), Check::Pass);
        assert_eq!(c.check(""), Check::Empty);
    }
}
