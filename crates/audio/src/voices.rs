//! Which provider voice speaks for each OpenAI voice name. Clients ask for `alloy` or `onyx`;
//! Google and Polly have their own catalogues, so the router keeps one table, with defaults
//! chosen to match each OpenAI voice's register (gender, pitch, accent), and its `router.toml`
//! can override any entry in a `[voices]` table (`RouterConfig::voices`):
//!
//! ```toml
//! [voices.alloy]
//! google = { name = "en-US-Neural2-F", language_code = "en-US" }
//! polly = { voice_id = "Joanna", engine = "neural" }
//! ```
//!
//! Overrides replace a provider's entry for that voice only; other voices and other providers
//! keep their defaults. Names are case-insensitive.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A Google Cloud Text-to-Speech voice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoogleVoice {
    /// The voice name, e.g. `en-US-Neural2-F`.
    pub name: String,
    /// Its BCP-47 language, e.g. `en-US`.
    pub language_code: String,
}

/// Amazon Polly's synthesis engines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PollyEngine {
    /// Concatenative voices.
    Standard,
    /// Neural voices.
    Neural,
    /// Long-form voices.
    LongForm,
    /// Generative voices.
    Generative,
}

impl PollyEngine {
    /// The value of Polly's `Engine` parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            PollyEngine::Standard => "standard",
            PollyEngine::Neural => "neural",
            PollyEngine::LongForm => "long-form",
            PollyEngine::Generative => "generative",
        }
    }
}

/// An Amazon Polly voice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollyVoice {
    /// Polly's `VoiceId`, e.g. `Joanna`.
    pub voice_id: String,
    /// The engine to request; the voice must support it.
    pub engine: PollyEngine,
    /// Polly's `LanguageCode`, only needed for bilingual voices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language_code: Option<String>,
}

/// Every provider's voice for one OpenAI voice.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoiceTargets {
    /// The Google voice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub google: Option<GoogleVoice>,
    /// The Polly voice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub polly: Option<PollyVoice>,
}

/// OpenAI voice name → provider voices. Deserializes from a map keyed by voice name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "BTreeMap<String, VoiceTargets>", into = "BTreeMap<String, VoiceTargets>")]
pub struct VoiceMap {
    voices: BTreeMap<String, VoiceTargets>,
}

impl From<BTreeMap<String, VoiceTargets>> for VoiceMap {
    fn from(map: BTreeMap<String, VoiceTargets>) -> Self {
        VoiceMap {
            voices: map.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect(),
        }
    }
}

impl From<VoiceMap> for BTreeMap<String, VoiceTargets> {
    fn from(map: VoiceMap) -> Self {
        map.voices
    }
}

/// The built-in voices: (OpenAI name, Google voice, Google language, Polly voice). Google's
/// Neural2 and Polly's neural voices, matched on register; `ballad` and `fable` are British.
/// Google has no gender-neutral Neural2 voice, so `alloy` gets a female one.
const DEFAULTS: [(&str, &str, &str, &str); 13] = [
    ("alloy", "en-US-Neural2-F", "en-US", "Joanna"),
    ("ash", "en-US-Neural2-D", "en-US", "Matthew"),
    ("ballad", "en-GB-Neural2-B", "en-GB", "Brian"),
    ("cedar", "en-US-Neural2-A", "en-US", "Stephen"),
    ("coral", "en-US-Neural2-C", "en-US", "Salli"),
    ("echo", "en-US-Neural2-J", "en-US", "Joey"),
    ("fable", "en-GB-Neural2-D", "en-GB", "Arthur"),
    ("marin", "en-US-Neural2-F", "en-US", "Kendra"),
    ("nova", "en-US-Neural2-G", "en-US", "Ruth"),
    ("onyx", "en-US-Neural2-I", "en-US", "Gregory"),
    ("sage", "en-US-Neural2-E", "en-US", "Kimberly"),
    ("shimmer", "en-US-Neural2-H", "en-US", "Danielle"),
    ("verse", "en-US-Neural2-A", "en-US", "Matthew"),
];

impl Default for VoiceMap {
    /// The built-in table for all OpenAI voices.
    fn default() -> Self {
        let voices = DEFAULTS
            .iter()
            .map(|&(openai, google, language, polly)| {
                let targets = VoiceTargets {
                    google: Some(GoogleVoice {
                        name: google.to_owned(),
                        language_code: language.to_owned(),
                    }),
                    polly: Some(PollyVoice {
                        voice_id: polly.to_owned(),
                        engine: PollyEngine::Neural,
                        language_code: None,
                    }),
                };
                (openai.to_owned(), targets)
            })
            .collect();
        VoiceMap { voices }
    }
}

impl VoiceMap {
    /// A map with no voices (for configurations that list every voice themselves).
    pub fn empty() -> Self {
        VoiceMap {
            voices: BTreeMap::new(),
        }
    }

    /// The defaults with `overrides` laid over them, provider by provider.
    pub fn with_overrides(overrides: VoiceMap) -> Self {
        let mut map = VoiceMap::default();
        map.overlay(overrides);
        map
    }

    /// Lays `overrides` over this map: each voice's provider entry that `overrides` sets
    /// replaces the current one; voices not present are added.
    pub fn overlay(&mut self, overrides: VoiceMap) {
        for (name, targets) in overrides.voices {
            let entry = self.voices.entry(name).or_default();
            if targets.google.is_some() {
                entry.google = targets.google;
            }
            if targets.polly.is_some() {
                entry.polly = targets.polly;
            }
        }
    }

    /// Sets every provider voice for `name`.
    pub fn insert(&mut self, name: &str, targets: VoiceTargets) {
        self.voices.insert(name.to_ascii_lowercase(), targets);
    }

    /// The Google voice for an OpenAI voice name.
    pub fn google(&self, name: &str) -> Option<&GoogleVoice> {
        self.voices.get(&name.to_ascii_lowercase())?.google.as_ref()
    }

    /// The Polly voice for an OpenAI voice name.
    pub fn polly(&self, name: &str) -> Option<&PollyVoice> {
        self.voices.get(&name.to_ascii_lowercase())?.polly.as_ref()
    }

    /// The OpenAI voice names known, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.voices.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_openai_voice_has_both_providers() {
        let map = VoiceMap::default();
        for name in [
            "alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse",
        ] {
            let google = map.google(name).unwrap_or_else(|| panic!("{name} has no Google voice"));
            assert!(google.name.starts_with(&google.language_code), "{name}: {google:?}");
            assert!(map.polly(name).is_some(), "{name} has no Polly voice");
        }
        assert_eq!(map.google("ALLOY"), map.google("alloy"));
        assert!(map.google("nobody").is_none());
    }

    #[test]
    fn config_overrides_one_provider_and_keeps_the_rest() {
        let toml_like = serde_json::json!({
            "Alloy": {"polly": {"voice_id": "Ivy", "engine": "standard"}},
            "narrator": {"google": {"name": "de-DE-Neural2-B", "language_code": "de-DE"}}
        });
        let overrides: VoiceMap = serde_json::from_value(toml_like).unwrap();
        let map = VoiceMap::with_overrides(overrides);
        assert_eq!(
            map.polly("alloy").map(|p| (p.voice_id.as_str(), p.engine)),
            Some(("Ivy", PollyEngine::Standard))
        );
        assert_eq!(map.google("alloy").map(|g| g.name.as_str()), Some("en-US-Neural2-F"));
        assert_eq!(map.google("narrator").map(|g| g.language_code.as_str()), Some("de-DE"));
        assert!(map.polly("narrator").is_none());
    }

    #[test]
    fn unknown_keys_and_engines_are_rejected() {
        let typo = serde_json::json!({"alloy": {"gogle": {"name": "x", "language_code": "en-US"}}});
        assert!(serde_json::from_value::<VoiceMap>(typo).is_err());
        let engine = serde_json::json!({"alloy": {"polly": {"voice_id": "Joanna", "engine": "turbo"}}});
        assert!(serde_json::from_value::<VoiceMap>(engine).is_err());
    }

    #[test]
    fn serializes_back_to_the_same_map() {
        let map = VoiceMap::default();
        let json = serde_json::to_value(&map).unwrap();
        assert_eq!(json["alloy"]["polly"]["engine"], "neural");
        assert_eq!(serde_json::from_value::<VoiceMap>(json).unwrap(), map);
        assert_eq!(PollyEngine::LongForm.as_str(), "long-form");
    }
}
