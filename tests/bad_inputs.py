"""The bad-input corpus: things people (or broken clients) send that are not the answer.

Each entry is one `Bad`: free text, a command word with junk arguments, or a button payload.
Button payloads are templates filled in per question, so "a stale turn" or "the right turn
with an unknown value" means the same thing at every question:

    {turn}   the turn of the question waiting now     {prev} / {next}  one before / after
    {value}  a real option value of that question     {today}          today as yyyymmdd
    {exercise}  an exercise id of today's session (or a real exercise id when there is none)

Most entries must leave the conversation exactly where it was. A few are, by design, a
real answer somewhere (`valid_at`: "０" is NFKC for "0" on the pain scale, "11" is 11:00 on
a free clock question) or start another conversation (`moves`: "/checkin please now" starts
a check-in, as that command always does). The tests accept those and then put the state back.

Slack sends message text with &, < and > escaped and mentions as <@U…>/<!channel>;
`slack_raw` marks the entries that are already in that wire form.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["text", "command", "button"]

# Stop tags used in `valid_at`: the kind of question at which the entry is a real answer.
PAIN = "pain"  # a 0-10 scale whose buttons are the digits; "7/10", "seven" typed
CLOCK = "clock"  # free text read as a time of day
MINUTES = "minutes"  # free text read as a run's duration ("11" is 11 minutes)


@dataclass(frozen=True)
class Bad:
    name: str
    kind: Kind
    value: str  # the text; "word args" for a command; a payload template for a button
    valid_at: frozenset[str] = field(default_factory=frozenset)
    moves: bool = False  # starts another flow on purpose (a flow command, words about pain)
    slack_raw: bool = False  # already in Slack's escaped wire form

    @property
    def command(self) -> tuple[str, str]:
        assert self.kind == "command"
        word, _, args = self.value.partition(" ")
        return word, args

    def payload(self, turn: int, value: str, today: str, exercise: str) -> str:
        assert self.kind == "button"
        return (
            self.value.replace("{turn}", str(turn))
            .replace("{prev}", str(max(turn - 1, 0)))
            .replace("{next}", str(turn + 1))
            .replace("{value}", value)
            .replace("{today}", today)
            .replace("{exercise}", exercise)
        )

    def __str__(self) -> str:
        return self.name


def _text(name: str, value: str, **kw: object) -> Bad:
    return Bad(name, "text", value, **kw)  # type: ignore[arg-type]


def _cmd(name: str, value: str, **kw: object) -> Bad:
    return Bad(name, "command", value, **kw)  # type: ignore[arg-type]


def _button(name: str, value: str, **kw: object) -> Bad:
    return Bad(name, "button", value, **kw)  # type: ignore[arg-type]


def _pad(prefix: str, size: int) -> str:
    """`prefix` padded with "z" to exactly `size` bytes of UTF-8."""
    return prefix + "z" * (size - len(prefix.encode()))


LONG_TEXT = 100_000

TEXTS: tuple[Bad, ...] = (
    # size
    _text("long_100k_ascii", "a" * LONG_TEXT),
    _text("long_100k_lines", ("pain 7/10 🏃‍♀️ صباح\n" * 6000)[:LONG_TEXT]),
    _text("at_the_limit_2000", "b" * 2000),
    _text("over_the_limit_2001", "c" * 2001),
    _text("over_telegram_4097", "d" * 4097),
    # emoji: plain, ZWJ sequences, flags, modifiers, a keycap
    _text("emoji", "😀🔥💯"),
    _text("emoji_zwj_runner", "🏃‍♀️"),
    _text("emoji_zwj_family", "👨‍👩‍👧‍👦"),
    _text("emoji_flags", "🇩🇪🇺🇦🇯🇵"),
    _text("emoji_rainbow_flag", "🏳️‍🌈"),
    _text("emoji_skin_tone", "👍🏽👋🏿"),
    _text("emoji_keycap_seven", "7️⃣"),
    _text("emoji_many", "🦵" * 500),
    # right-to-left and invisible characters
    _text("arabic", "مرحبا، وركي يؤلمني كثيرا"),
    _text("hebrew", "שלום, הירך שלי כואבת"),
    # Words about pain start the check-in on purpose (free text about the hip, issue 11).
    _text("mixed_direction", "pain مرحبا 3 שלום", moves=True),
    _text("zero_width_space", "\u200b"),
    _text("zero_width_joiner", "\u200d"),
    _text("byte_order_mark", "\ufeff"),
    _text("zero_width_inside", "he\u200bl\u200dp\ufeffme"),
    _text("bidi_override", "\u202eniap ym\u202c"),
    _text("bidi_isolates", "\u2066\u2067\u2068x\u2069"),
    _text("combining_marks", "Z̸̢̧̛̗̘̙͇͈͉͍͎̀́̂̃̄̅̆̇̈̉ͅa̷lgo"),
    _text("lone_surrogate_like", "\ufffd\ufffe"),
    # control characters
    _text("nul", "\x00"),
    _text("nul_inside", "pai\x00n 3", valid_at=frozenset({PAIN}), moves=True),  # "pain 3"
    _text("bell", "\x07\x07\x07"),
    _text("ansi_escape", "\x1b[31mred\x1b[0m \x1b]0;title\x07"),
    _text("backspaces", "abc\x08\x08\x08\x7f"),
    _text("only_newlines", "\n\n\r\n"),
    _text("tabs_and_spaces", " \t \u00a0 \u3000 "),
    # SQL-looking
    _text("sql_drop", "'; DROP TABLE users; --"),
    _text("sql_or", "1' OR '1'='1"),
    _text("sql_union", "0 UNION SELECT platform_user_id FROM users --"),
    _text("sql_wildcards", "%_%\\"),
    # HTML, Slack and Telegram markup
    _text("html_bold", "<b>x</b>"),
    _text("html_script", "<script>alert(1)</script>"),
    _text("html_entity", "&amp;"),
    _text("html_escaped", "&lt;b&gt;x&lt;/b&gt;"),
    _text("slack_channel", "<!channel>", slack_raw=True),
    _text("slack_here", "<!here> hello", slack_raw=True),
    _text("slack_user_mention", "<@U123>", slack_raw=True),
    _text("slack_channel_link", "<#C123|general>", slack_raw=True),
    _text("slack_link", "<https://evil.example|click me>", slack_raw=True),
    _text("markdown", "*bold* _x_ [link](http://x)"),
    _text("markdown_code", "`code` ```block``` ~strike~ ||spoiler||"),
    _text("telegram_mention_link", "[me](tg://user?id=1) @hipcoach_test_bot"),
    # numbers out of range or not quite numbers
    _text("eleven", "11", valid_at=frozenset({CLOCK, MINUTES})),
    _text("minus_one", "-1"),
    _text("seven_and_a_half", "7.5"),
    _text("seven_word", "seven", valid_at=frozenset({PAIN})),
    _text("exponent", "1e9"),
    _text("fullwidth_zero", "０", valid_at=frozenset({PAIN})),
    _text("ten_of_ten", "10/10 pain", valid_at=frozenset({PAIN}), moves=True),
    _text("huge_number", "9" * 40),
    _text("nan", "NaN"),
    _text("hex", "0x7"),
    _text("vulgar_half", "½"),
    _text("negative_zero", "-0"),
    _text("clock_nonsense", "25:99"),
    # timezones that do not exist
    _text("tz_mars", "Mars/Olympus"),
    _text("tz_path", "Europe/../../etc/passwd"),
    _text("tz_abs_path", "/etc/passwd"),
    _text("tz_nul", "Mars/Olympus\x00"),
    _text("tz_offset", "UTC+25"),
    _text("tz_etc_out_of_range", "Etc/GMT+15"),
    _text("tz_long", "Europe/" + "Berlin" * 30),
    _text("tz_not_a_place", "Factory"),  # in the tz database, but no one lives there
    # unknown words and slash words
    _text("unknown_slash", "/frobnicate now"),
    _text("hip_warmup_remove", "/hip warmup remove 99"),
)

COMMANDS: tuple[Bad, ...] = (
    _cmd("checkin_junk", "checkin please now", moves=True),
    _cmd("start_junk", "start over; DROP TABLE users", moves=True),
    _cmd("settings_junk", "settings \x00\x07", moves=True),
    _cmd("delete_junk", "delete everything right now", moves=True),
    _cmd("warmup_add_junk", "warmup add funday 25:99 before -5"),
    _cmd("warmup_add_huge_lead", "warmup add mon 07:00 before 99999"),
    _cmd("warmup_remove_99", "warmup remove 99"),
    _cmd("warmup_remove_word", "warmup remove all of them"),
    _cmd("warmup_tz_mars", "warmup tz Mars/Olympus"),
    _cmd("warmup_tz_path", "warmup tz Europe/../../etc/passwd"),
    _cmd("warmup_unknown_verb", "warmup explode"),
    _cmd("today_junk", "today '; DROP TABLE checkins; --"),
    _cmd("help_junk", "help <script>alert(1)</script>"),
    _cmd("export_junk", "export ../../etc/passwd"),
)

BUTTONS: tuple[Bad, ...] = (
    _button("stale_turn", "{prev}:{value}"),
    _button("future_turn", "{next}:{value}"),
    _button("turn_zero", "0:{value}"),
    _button("negative_turn", "-1:{value}"),
    _button("huge_turn", "99999999999999999999:{value}"),
    _button("no_turn", ":{value}"),
    _button("words_for_turn", "seven:{value}"),
    _button("unknown_value", "{turn}:nonsense"),
    _button("empty_value", "{turn}:"),
    _button("value_with_nul", "{turn}:{value}\x00"),
    _button("nul_only", "\x00"),
    _button("empty", ""),
    _button("just_a_colon", ":"),
    _button("sql_value", "{turn}:' OR 1=1 --"),
    _button("bytes_63", _pad("{turn}:", 63)),
    _button("bytes_64", _pad("{turn}:", 64)),
    _button("bytes_65", _pad("{turn}:", 65)),
    _button("emoji_value", "{turn}:🏃‍♀️"),
    _button("log_bad_date_bad_id", "x:l:<bad date>:<bad id>:d"),
    _button("log_impossible_date", "x:l:20261345:{exercise}:d"),
    _button("log_stale_date", "x:l:20200101:{exercise}:d"),
    _button("log_unknown_exercise", "x:l:{today}:no_such_exercise:d"),
    _button("log_path_exercise", "x:l:{today}:../../etc/passwd:d"),
    _button("log_bad_outcome", "x:l:{today}:{exercise}:q"),
    _button("log_extra_part", "x:l:{today}:{exercise}:d:extra"),
    _button("log_nul", "x:l:{today}:{exercise}\x00:d"),
    _button("snooze_not_offered", "x:z:45"),
    _button("snooze_negative", "x:z:-30"),
    _button("snooze_empty", "x:z:"),
    _button("action_unknown", "x:q"),
    _button("action_empty", "x:"),
    _button("action_with_junk", "x:c:extra"),
    _button("slack_command_unknown", "cmd:frobnicate"),
)

CORPUS: tuple[Bad, ...] = TEXTS + COMMANDS + BUTTONS

# A representative slice for the slower platform runs at every question: one of each sort.
SAMPLE_NAMES = (
    "long_100k_lines",
    "emoji_zwj_family",
    "bidi_override",
    "nul_inside",
    "ansi_escape",
    "sql_drop",
    "html_script",
    "slack_channel",
    "markdown",
    "eleven",
    "fullwidth_zero",
    "seven_word",
    "tz_path",
    "checkin_junk",
    "warmup_add_junk",
    "hip_warmup_remove",
    "stale_turn",
    "unknown_value",
    "bytes_65",
    "log_bad_date_bad_id",
)
SAMPLE: tuple[Bad, ...] = tuple(b for b in CORPUS if b.name in SAMPLE_NAMES)

assert len({b.name for b in CORPUS}) == len(CORPUS), "corpus names must be unique"
assert len(SAMPLE) == len(SAMPLE_NAMES)
