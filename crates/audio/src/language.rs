//! Language names and codes between OpenAI's and the providers' conventions. OpenAI takes an
//! ISO 639-1 code (`en`) and answers `verbose_json` with the English name Whisper uses
//! (`english`); Google wants a BCP-47 tag with a region (`en-US`) and answers with one.

/// ISO 639-1 (and Whisper's few longer codes) to the English name Whisper reports.
const NAMES: &[(&str, &str)] = &[
    ("af", "afrikaans"),
    ("am", "amharic"),
    ("ar", "arabic"),
    ("as", "assamese"),
    ("az", "azerbaijani"),
    ("ba", "bashkir"),
    ("be", "belarusian"),
    ("bg", "bulgarian"),
    ("bn", "bengali"),
    ("bo", "tibetan"),
    ("br", "breton"),
    ("bs", "bosnian"),
    ("ca", "catalan"),
    ("cs", "czech"),
    ("cy", "welsh"),
    ("da", "danish"),
    ("de", "german"),
    ("el", "greek"),
    ("en", "english"),
    ("es", "spanish"),
    ("et", "estonian"),
    ("eu", "basque"),
    ("fa", "persian"),
    ("fi", "finnish"),
    ("fo", "faroese"),
    ("fr", "french"),
    ("gl", "galician"),
    ("gu", "gujarati"),
    ("ha", "hausa"),
    ("haw", "hawaiian"),
    ("he", "hebrew"),
    ("hi", "hindi"),
    ("hr", "croatian"),
    ("ht", "haitian creole"),
    ("hu", "hungarian"),
    ("hy", "armenian"),
    ("id", "indonesian"),
    ("is", "icelandic"),
    ("it", "italian"),
    ("ja", "japanese"),
    ("jw", "javanese"),
    ("ka", "georgian"),
    ("kk", "kazakh"),
    ("km", "khmer"),
    ("kn", "kannada"),
    ("ko", "korean"),
    ("la", "latin"),
    ("lb", "luxembourgish"),
    ("ln", "lingala"),
    ("lo", "lao"),
    ("lt", "lithuanian"),
    ("lv", "latvian"),
    ("mg", "malagasy"),
    ("mi", "maori"),
    ("mk", "macedonian"),
    ("ml", "malayalam"),
    ("mn", "mongolian"),
    ("mr", "marathi"),
    ("ms", "malay"),
    ("mt", "maltese"),
    ("my", "myanmar"),
    ("ne", "nepali"),
    ("nl", "dutch"),
    ("nn", "nynorsk"),
    ("no", "norwegian"),
    ("oc", "occitan"),
    ("pa", "punjabi"),
    ("pl", "polish"),
    ("ps", "pashto"),
    ("pt", "portuguese"),
    ("ro", "romanian"),
    ("ru", "russian"),
    ("sa", "sanskrit"),
    ("sd", "sindhi"),
    ("si", "sinhala"),
    ("sk", "slovak"),
    ("sl", "slovenian"),
    ("sn", "shona"),
    ("so", "somali"),
    ("sq", "albanian"),
    ("sr", "serbian"),
    ("su", "sundanese"),
    ("sv", "swedish"),
    ("sw", "swahili"),
    ("ta", "tamil"),
    ("te", "telugu"),
    ("tg", "tajik"),
    ("th", "thai"),
    ("tk", "turkmen"),
    ("tl", "tagalog"),
    ("tr", "turkish"),
    ("tt", "tatar"),
    ("uk", "ukrainian"),
    ("ur", "urdu"),
    ("uz", "uzbek"),
    ("vi", "vietnamese"),
    ("yi", "yiddish"),
    ("yo", "yoruba"),
    ("yue", "cantonese"),
    ("zh", "chinese"),
];

/// The region Google Cloud speech services get when the client names only a language.
const GOOGLE_REGIONS: &[(&str, &str)] = &[
    ("ar", "ar-EG"),
    ("bg", "bg-BG"),
    ("ca", "ca-ES"),
    ("cs", "cs-CZ"),
    ("da", "da-DK"),
    ("de", "de-DE"),
    ("el", "el-GR"),
    ("en", "en-US"),
    ("es", "es-ES"),
    ("fi", "fi-FI"),
    ("fr", "fr-FR"),
    ("he", "iw-IL"),
    ("hi", "hi-IN"),
    ("hr", "hr-HR"),
    ("hu", "hu-HU"),
    ("id", "id-ID"),
    ("it", "it-IT"),
    ("ja", "ja-JP"),
    ("ko", "ko-KR"),
    ("ms", "ms-MY"),
    ("nl", "nl-NL"),
    ("no", "nb-NO"),
    ("pl", "pl-PL"),
    ("pt", "pt-BR"),
    ("ro", "ro-RO"),
    ("ru", "ru-RU"),
    ("sk", "sk-SK"),
    ("sv", "sv-SE"),
    ("th", "th-TH"),
    ("tr", "tr-TR"),
    ("uk", "uk-UA"),
    ("vi", "vi-VN"),
    ("zh", "cmn-Hans-CN"),
];

/// The English name Whisper reports for a language code. Accepts a bare code (`en`) or a tag
/// with a region (`en-US`, `en_us`), case-insensitively. `None` for unknown languages.
pub fn name(code: &str) -> Option<&'static str> {
    let primary = primary_subtag(code);
    let primary = if primary == "iw" { "he".to_owned() } else { primary };
    NAMES.iter().find(|(c, _)| *c == primary).map(|(_, n)| *n)
}

/// A BCP-47 tag Google Cloud speech services accept for an OpenAI `language`. A tag that
/// already has a region passes through; a bare code gets the usual region, or passes through
/// unchanged when there is none on record (Google answers for itself then).
pub fn google_tag(code: &str) -> String {
    let code = code.trim();
    if code.contains(['-', '_']) {
        return code.replace('_', "-");
    }
    let lower = code.to_ascii_lowercase();
    GOOGLE_REGIONS
        .iter()
        .find(|(c, _)| *c == lower)
        .map_or(lower, |(_, tag)| (*tag).to_owned())
}

fn primary_subtag(code: &str) -> String {
    code.trim()
        .split(['-', '_'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_codes_and_tags() {
        assert_eq!(name("en"), Some("english"));
        assert_eq!(name("en-us"), Some("english"));
        assert_eq!(name("PT_br"), Some("portuguese"));
        assert_eq!(name("iw-IL"), Some("hebrew"));
        assert_eq!(name("yue"), Some("cantonese"));
        assert_eq!(name("xx"), None);
        assert_eq!(name(""), None);
    }

    #[test]
    fn google_tags_gain_a_region_only_when_missing() {
        assert_eq!(google_tag("en"), "en-US");
        assert_eq!(google_tag("ZH"), "cmn-Hans-CN");
        assert_eq!(google_tag("en-GB"), "en-GB");
        assert_eq!(google_tag("pt_PT"), "pt-PT");
        assert_eq!(google_tag("sw"), "sw");
    }

    #[test]
    fn tables_are_sorted_and_unique() {
        for table in [NAMES, GOOGLE_REGIONS] {
            assert!(table.windows(2).all(|w| w[0].0 < w[1].0));
        }
    }
}
