//! The spec sentence behind each judgement: a divergence names the rule the oracle applied, by
//! reference into `spec/PROTOCOL.md` (the runner prints the whole sentence, read from the spec it
//! embeds; a test checks that every reference here resolves to exactly one sentence).

use echowire_codec::ErrorCode;

use crate::spec::SpecRef;

/// A rule the oracle applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// §3.6: every request is answered exactly once.
    AnswerExactlyOnce,
    /// §3.6.1 rule 3: the ERROR of a connection error is the last frame.
    ErrorIsLast,
    /// §3.6.1 rule 6: the final GOODBYE comes after every response.
    FinalGoodbyeAfterResponses,
    /// §3.6.1 rule 1: WELCOME (or the ERROR refusing the handshake) first.
    WelcomeFirst,
    /// §2.7: the order of the checks, and what each one answers.
    ProcessingOrder,
    /// §8.3: a timer fires within its window.
    TimerWindow,
    /// §3.10: a connection error or the end of a drain closes lingeringly, not with a reset.
    Lingering,
    /// §3.8: the drain timeout ends a drain abortively.
    DrainTimeout,
    /// §3.5: the server's states and transitions (a close or a frame the states do not allow).
    States,
    /// §4.8: `retry_after_ms` is 0 except for BUSY and SHUTTING_DOWN.
    RetryHint,
    /// §2.1: what the server sends is frames.
    Framing,
    /// The rule of one error code (where the spec says when it is sent).
    Code(ErrorCode),
    /// §4: the response a request's type defines (ECHO's payload, SUM's total, ...).
    Response,
}

fn r(section: &str, quote: &str) -> SpecRef {
    SpecRef {
        section: section.into(),
        quote: quote.into(),
    }
}

impl Rule {
    /// The sentence.
    pub fn spec(self) -> SpecRef {
        match self {
            Rule::AnswerExactlyOnce => r("3.6", "The server MUST answer every request it receives"),
            Rule::ErrorIsLast => r("3.6.1", "The ERROR of a connection error (ID 0, scope C)"),
            Rule::FinalGoodbyeAfterResponses => r(
                "3.6.1",
                "A GOODBYE NO_ERROR that ends a drain comes after every response",
            ),
            Rule::WelcomeFirst => r("3.6.1", "WELCOME, or the ERROR that refuses the handshake"),
            Rule::ProcessingOrder => r("2.7", "A receiver processes each complete frame"),
            Rule::TimerWindow => r("8.3", "A timeout fires no earlier than its value"),
            Rule::Lingering => r("3.10", "A server MUST therefore close *lingeringly*"),
            Rule::DrainTimeout => r("3.8", "When the drain timeout expires with requests"),
            Rule::States => r("3.5", "Input received in CLOSING is read and discarded"),
            Rule::RetryHint => r("4.8", "`retry_after_ms` MUST be 0 for every code other"),
            Rule::Framing => r("2.1", "Every frame"),
            Rule::Response => r("3.6", "Responses carry the request's ID"),
            Rule::Code(c) => code_rule(c),
        }
    }
}

fn code_rule(c: ErrorCode) -> SpecRef {
    match c {
        ErrorCode::TOO_MANY_OUTSTANDING => r("8.4", "**Outstanding requests**"),
        ErrorCode::BUSY => r("8.4", "**Heavy work**"),
        ErrorCode::SHUTTING_DOWN => r("3.8", "Requests received after a client's GOODBYE"),
        ErrorCode::CANCELLED => r(
            "3.7",
            "if the request is outstanding and the server has not",
        ),
        ErrorCode::DUPLICATE_REQUEST_ID => r("2.5", "**At a server**"),
        ErrorCode::INVALID_REQUEST_ID => r("2.5", "A request with ID 0"),
        ErrorCode::TRUNCATED_FRAME => r("3.9", "If the stream ends inside a frame"),
        ErrorCode::INVALID_ARGUMENT => r("4.6", "A `cost` of 0 or above 2^24"),
        ErrorCode::RESPONSE_TOO_LARGE => r("3.4", "When a response would exceed"),
        ErrorCode::BAD_PREFACE => r("3.1", "The server MUST compare each octet"),
        ErrorCode::UNSUPPORTED_VERSION => r("3.3", "If there is none"),
        ErrorCode::HANDSHAKE_REQUIRED => {
            r("3.2", "The server MUST treat any frame other than HELLO")
        }
        ErrorCode::FRAME_TOO_SHORT => r("2.2", "A receiver that reads a `Length` below 8"),
        ErrorCode::FRAME_TOO_LARGE => r("2.2", "A receiver that reads a larger `Length`"),
        ErrorCode::INVALID_FLAGS => r(
            "2.4",
            "A receiver MUST reject a frame with any undefined bit set",
        ),
        ErrorCode::CONNECTION_LIMIT => r("8.4", "**Connections**"),
        ErrorCode::HANDSHAKE_TIMEOUT | ErrorCode::IDLE_TIMEOUT => {
            r("8.3", "A timeout fires no earlier than its value")
        }
        _ => r("2.7", "A receiver processes each complete frame"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_names_one_sentence_of_the_spec() {
        let mut rules = vec![
            Rule::AnswerExactlyOnce,
            Rule::ErrorIsLast,
            Rule::FinalGoodbyeAfterResponses,
            Rule::WelcomeFirst,
            Rule::ProcessingOrder,
            Rule::TimerWindow,
            Rule::Lingering,
            Rule::DrainTimeout,
            Rule::States,
            Rule::RetryHint,
            Rule::Framing,
            Rule::Response,
        ];
        rules.extend(ErrorCode::ALL.iter().map(|&c| Rule::Code(c)));
        let bad: Vec<String> = rules
            .iter()
            .filter_map(|rule| {
                crate::spec::resolve(&rule.spec())
                    .err()
                    .map(|e| format!("{rule:?}: {e}"))
            })
            .collect();
        assert!(bad.is_empty(), "{}", bad.join("\n"));
    }
}
