//! The console's words, in English and Chinese. Every page takes them from one [`Text`], so
//! a word missing in one language is a compile error, not a blank on a page.

mod en;
mod zh;

use axum::http::{HeaderMap, header};

/// The cookie that keeps a browser's choice of language.
const COOKIE: &str = "mcps_lang";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lang {
    En,
    Zh,
}

impl Lang {
    /// The browser's choice (the cookie), else the first of its `Accept-Language` we speak.
    pub fn of(headers: &HeaderMap) -> Self {
        let chosen = super::cookie(headers, COOKIE).and_then(Self::named);
        chosen.unwrap_or_else(|| {
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| {
                    value
                        .split(',')
                        .filter_map(|tag| tag.split(';').next())
                        .find_map(|tag| Self::named(tag.trim().split('-').next()?))
                })
                .unwrap_or(Self::En)
        })
    }

    pub fn named(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "en" => Some(Self::En),
            "zh" => Some(Self::Zh),
            _ => None,
        }
    }

    /// Its BCP 47 tag, for `<html lang>`.
    pub fn tag(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Zh => "zh-CN",
        }
    }

    /// The other language, which the page header offers.
    pub fn other(self) -> Self {
        match self {
            Self::En => Self::Zh,
            Self::Zh => Self::En,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Zh => "zh",
        }
    }

    pub fn text(self) -> &'static Text {
        match self {
            Self::En => &en::EN,
            Self::Zh => &zh::ZH,
        }
    }

    /// The `Set-Cookie` value that keeps this language for a year.
    pub fn cookie(self) -> String {
        format!(
            "{COOKIE}={}; Path=/; SameSite=Lax; Max-Age=31536000",
            self.code()
        )
    }
}

/// Every word the console shows.
pub(super) struct Text {
    pub language_name: &'static str,
    pub skip_to_content: &'static str,
    pub main_navigation: &'static str,
    pub overview: &'static str,
    pub upstreams_page: &'static str,
    pub sign_in: &'static str,
    pub sign_in_title: &'static str,
    pub sign_out: &'static str,
    pub signed_in_as: &'static str,
    pub username: &'static str,
    pub password: &'static str,
    pub first_password_hint: &'static str,
    pub version: &'static str,
    pub uptime: &'static str,
    pub sessions: &'static str,
    pub calls: &'static str,
    pub errors: &'static str,
    pub upstreams: &'static str,
    pub upstream: &'static str,
    pub state: &'static str,
    pub transport: &'static str,
    pub protocol: &'static str,
    pub tools: &'static str,
    pub restarts: &'static str,
    pub last_error: &'static str,
    pub stderr_tail: &'static str,
    pub from_config: &'static str,
    pub from_api: &'static str,
    pub none: &'static str,
    pub live_note: &'static str,
    pub done: &'static str,
    pub add_upstream: &'static str,
    pub add_upstream_hint: &'static str,
    pub name: &'static str,
    pub command: &'static str,
    pub args: &'static str,
    pub env: &'static str,
    pub url: &'static str,
    pub headers: &'static str,
    pub prefix: &'static str,
    pub prefix_hint: &'static str,
    pub start_disabled: &'static str,
    pub add: &'static str,
    pub restart: &'static str,
    pub enable: &'static str,
    pub disable: &'static str,
    pub delete: &'static str,
    pub actions: &'static str,
    pub runs: &'static str,
    pub read_only_hint: &'static str,
    pub allowlist_empty: &'static str,
    pub allowlist_is: &'static str,
    pub one_per_line: &'static str,
    pub tools_page: &'static str,
    pub search: &'static str,
    pub search_label: &'static str,
    pub every_upstream: &'static str,
    pub virtual_server: &'static str,
    pub no_tools: &'static str,
    pub description: &'static str,
    pub input_schema: &'static str,
    pub try_it: &'static str,
    pub call: &'static str,
    pub required: &'static str,
    pub result: &'static str,
    pub tool_failed: &'static str,
    pub call_refused: &'static str,
    pub structured_content: &'static str,
    pub image_result: &'static str,
    pub json_hint: &'static str,
    pub calls_page: &'static str,
    pub calls_hint: &'static str,
    pub filters: &'static str,
    pub filter: &'static str,
    pub any: &'static str,
    pub tool: &'static str,
    pub outcome: &'static str,
    pub user: &'static str,
    pub client: &'static str,
    pub period: &'static str,
    pub all_time: &'static str,
    pub last_hour: &'static str,
    pub last_day: &'static str,
    pub last_week: &'static str,
    pub no_calls: &'static str,
    pub when: &'static str,
    pub took: &'static str,
    pub older: &'static str,
    pub call_record: &'static str,
    pub error: &'static str,
    pub keys_page: &'static str,
    pub keys_hint: &'static str,
    pub no_keys: &'static str,
    pub key_made: &'static str,
    pub key_once: &'static str,
    pub key_starts: &'static str,
    pub virtual_server_column: &'static str,
    pub whole_gateway: &'static str,
    pub made: &'static str,
    pub revoked: &'static str,
    pub revoke: &'static str,
    pub make_key: &'static str,
    pub make: &'static str,
    pub virtual_servers: &'static str,
    pub virtual_servers_hint: &'static str,
    pub endpoints: &'static str,
    pub logs_page: &'static str,
    pub logs_filter: &'static str,
    pub logs_hint: &'static str,
    pub admins_only: &'static str,
    pub calls_per_second: &'static str,
    pub failure_rate: &'static str,
    pub latency_percentiles: &'static str,
    pub ready: &'static str,
    pub starting: &'static str,
    pub degraded: &'static str,
    pub failed: &'static str,
    pub disabled: &'static str,
    pub stopped: &'static str,
    pub needs_authorization: &'static str,
    pub config_page: &'static str,
    pub effective_config: &'static str,
    pub effective_config_hint: &'static str,
    pub reload: &'static str,
    pub reload_hint: &'static str,
    pub not_reloadable: &'static str,
    pub reloaded: &'static str,
    pub reload_nothing: &'static str,
    pub reload_applied: &'static str,
    pub reload_refused_whole: &'static str,
    pub reload_added: &'static str,
    pub reload_changed: &'static str,
    pub reload_removed: &'static str,
    pub reload_refused: &'static str,
    pub reload_needs_restart: &'static str,
    pub reload_log_level: &'static str,
    pub reload_diff: &'static str,
    pub edit: &'static str,
    pub edit_upstream: &'static str,
    pub edit_upstream_hint: &'static str,
    pub save: &'static str,
    pub cancel: &'static str,
    pub authorize: &'static str,
    pub sign_out_upstream: &'static str,
    pub sign_in_started: &'static str,
    pub open_sign_in: &'static str,
    pub more_settings: &'static str,
    pub more_settings_hint: &'static str,
    pub keep_disabled: &'static str,
}

impl Text {
    /// An upstream state's name (`Phase::as_str`) in this language.
    pub fn state(&self, state: &str) -> &'static str {
        match state {
            "ready" => self.ready,
            "starting" => self.starting,
            "degraded" => self.degraded,
            "failed" => self.failed,
            "disabled" => self.disabled,
            "stopped" => self.stopped,
            _ => self.needs_authorization,
        }
    }
}
