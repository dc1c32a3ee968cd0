//! The 2026-07-28 `input_required` scenarios (SEP-2322): tools and a prompt that answer with
//! `InputRequiredResult` until the client retries with the answers. State that must survive a
//! round rides in `requestState`, sealed with HMAC-SHA256 so a tampered one is refused.

use rmcp::{
    ErrorData, RoleServer,
    model::{
        CallToolRequestParams, CallToolResponse, GetPromptRequestParams, GetPromptResponse,
        InputRequest, InputRequests, InputRequiredResult, InputResponses, RequestStateCodec,
        SealOptions,
    },
    service::RequestContext,
};
use serde_json::{Value, json};

use super::{complete, model};

pub const TOOLS: &[&str] = &[
    "test_input_required_result_elicitation",
    "test_input_required_result_sampling",
    "test_input_required_result_list_roots",
    "test_input_required_result_request_state",
    "test_input_required_result_multiple_inputs",
    "test_input_required_result_multi_round",
    "test_input_required_result_tampered_state",
    "test_input_required_result_capabilities",
];

pub const PROMPT: &str = "test_input_required_result_prompt";

/// Signs and checks `requestState`.
pub struct Codec(RequestStateCodec);

fn ask_name(key: &str, message: &str) -> (String, Value) {
    (
        key.to_owned(),
        json!({"method": "elicitation/create", "params": {"message": message,
            "requestedSchema": {"type": "object", "properties": {"name": {"type": "string"}},
                                "required": ["name"]}}}),
    )
}

fn ask_model(key: &str, text: &str, max_tokens: u32) -> (String, Value) {
    (
        key.to_owned(),
        json!({"method": "sampling/createMessage", "params": {
            "messages": [{"role": "user", "content": {"type": "text", "text": text}}],
            "maxTokens": max_tokens}}),
    )
}

fn ask_roots(key: &str) -> (String, Value) {
    (
        key.to_owned(),
        json!({"method": "roots/list", "params": {}}),
    )
}

fn requests(asked: Vec<(String, Value)>) -> InputRequests {
    asked
        .into_iter()
        .map(|(key, request)| (key, model::<InputRequest>(request)))
        .collect()
}

fn done(text: impl Into<String>) -> CallToolResponse {
    CallToolResponse::Complete(complete(
        json!({"content": [{"type": "text", "text": text.into()}]}),
    ))
}

/// The answer under `key`, which must be an object (a client result).
fn answer<'a>(responses: &'a InputResponses, key: &str) -> Result<Option<&'a Value>, ErrorData> {
    match responses.get(key) {
        None => Ok(None),
        Some(value) if value.is_object() => Ok(Some(value)),
        Some(_) => Err(ErrorData::invalid_params(
            format!("inputResponses.{key} must be a result object"),
            None,
        )),
    }
}

impl Codec {
    pub fn new() -> Self {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).expect("random source");
        Self(RequestStateCodec::try_new(secret.to_vec()).expect("32-byte key"))
    }

    fn seal(&self, tool: &str, state: &Value) -> String {
        self.0.seal_with(
            state.to_string().as_bytes(),
            &SealOptions::new().associated_data(tool.as_bytes()),
        )
    }

    fn open(&self, tool: &str, sealed: Option<&str>) -> Result<Option<Value>, ErrorData> {
        let Some(sealed) = sealed else {
            return Ok(None);
        };
        let refused = || ErrorData::invalid_params("requestState failed its integrity check", None);
        let bytes = self
            .0
            .open_with(sealed, tool.as_bytes())
            .map_err(|_| refused())?;
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|_| refused())
    }

    fn input_required(
        &self,
        tool: &str,
        asked: Vec<(String, Value)>,
        state: Option<Value>,
    ) -> CallToolResponse {
        let state = state.map(|state| self.seal(tool, &state));
        CallToolResponse::InputRequired(InputRequiredResult::new(Some(requests(asked)), state))
    }

    /// Runs one of [`TOOLS`], or `None` for any other tool.
    pub fn call_tool(
        &self,
        request: &CallToolRequestParams,
        context: &RequestContext<RoleServer>,
    ) -> Result<Option<CallToolResponse>, ErrorData> {
        let tool = request.name.as_ref();
        if !TOOLS.contains(&tool) {
            return Ok(None);
        }
        let empty = InputResponses::new();
        let responses = request.input_responses.as_ref().unwrap_or(&empty);
        let state = self.open(tool, request.request_state.as_deref())?;
        let response = match tool {
            "test_input_required_result_elicitation" => match answer(responses, "user_name")? {
                Some(answer) => done(format!(
                    "Hello, {}!",
                    answer["content"]["name"].as_str().unwrap_or("stranger")
                )),
                None => self.input_required(
                    tool,
                    vec![ask_name("user_name", "What is your name?")],
                    None,
                ),
            },
            "test_input_required_result_sampling" => match answer(responses, "capital_question")? {
                Some(answer) => done(format!(
                    "The model said: {}",
                    answer["content"]["text"].as_str().unwrap_or("")
                )),
                None => self.input_required(
                    tool,
                    vec![ask_model(
                        "capital_question",
                        "What is the capital of France?",
                        100,
                    )],
                    None,
                ),
            },
            "test_input_required_result_list_roots" => match answer(responses, "client_roots")? {
                Some(answer) => {
                    let roots: Vec<&str> = answer["roots"]
                        .as_array()
                        .map(|roots| {
                            roots
                                .iter()
                                .filter_map(|root| root["uri"].as_str())
                                .collect()
                        })
                        .unwrap_or_default();
                    done(format!("Client roots: {}", roots.join(", ")))
                }
                None => self.input_required(tool, vec![ask_roots("client_roots")], None),
            },
            "test_input_required_result_request_state"
            | "test_input_required_result_tampered_state" => {
                match (answer(responses, "confirm")?, state) {
                    (Some(_), Some(state)) if state["step"] == "confirm" => done("state-ok: confirmed"),
                    _ => self.input_required(
                        tool,
                        vec![(
                            "confirm".to_owned(),
                            json!({"method": "elicitation/create", "params": {"message": "Please confirm",
                                "requestedSchema": {"type": "object", "properties": {"ok": {"type": "boolean"}},
                                                    "required": ["ok"]}}}),
                        )],
                        Some(json!({"step": "confirm"})),
                    ),
                }
            }
            "test_input_required_result_multiple_inputs" => {
                let keys = ["user_name", "greeting", "client_roots"];
                let mut all = true;
                for key in keys {
                    all &= answer(responses, key)?.is_some();
                }
                if all && state.is_some() {
                    done("All inputs received")
                } else {
                    self.input_required(
                        tool,
                        vec![
                            ask_name("user_name", "What is your name?"),
                            ask_model("greeting", "Generate a greeting", 50),
                            ask_roots("client_roots"),
                        ],
                        Some(json!({"step": "all"})),
                    )
                }
            }
            "test_input_required_result_multi_round" => {
                let round = state
                    .as_ref()
                    .and_then(|state| state["round"].as_u64())
                    .unwrap_or(1);
                match (
                    round,
                    answer(responses, "step1")?,
                    answer(responses, "step2")?,
                ) {
                    (1, Some(step1), _) => {
                        let name = step1["content"]["name"].as_str().unwrap_or("stranger");
                        self.input_required(
                            tool,
                            vec![(
                                "step2".to_owned(),
                                json!({"method": "elicitation/create", "params": {
                                    "message": "Step 2: What is your favorite color?",
                                    "requestedSchema": {"type": "object",
                                        "properties": {"color": {"type": "string"}}, "required": ["color"]}}}),
                            )],
                            Some(json!({"round": 2, "name": name})),
                        )
                    }
                    (2, _, Some(step2)) => {
                        let name = state
                            .as_ref()
                            .and_then(|state| state["name"].as_str())
                            .unwrap_or("stranger");
                        let color = step2["content"]["color"].as_str().unwrap_or("no color");
                        done(format!("{name} likes {color}"))
                    }
                    _ => self.input_required(
                        tool,
                        vec![ask_name("step1", "Step 1: What is your name?")],
                        Some(json!({"round": 1})),
                    ),
                }
            }
            "test_input_required_result_capabilities" => {
                let capabilities = context.meta.client_capabilities().unwrap_or_default();
                if responses.is_empty() {
                    let mut asked = Vec::new();
                    if capabilities.elicitation.is_some() {
                        asked.push(ask_name("user_name", "What is your name?"));
                    }
                    if capabilities.sampling.is_some() {
                        asked.push(ask_model("greeting", "Generate a greeting", 50));
                    }
                    if asked.is_empty() {
                        done("The client declared nothing to ask with")
                    } else {
                        self.input_required(tool, asked, None)
                    }
                } else {
                    done("Inputs received")
                }
            }
            _ => unreachable!("checked against TOOLS"),
        };
        Ok(Some(response))
    }

    /// Gets [`PROMPT`], or `None` for any other prompt.
    pub fn get_prompt(
        &self,
        request: &GetPromptRequestParams,
        _context: &RequestContext<RoleServer>,
    ) -> Result<Option<GetPromptResponse>, ErrorData> {
        if request.name != PROMPT {
            return Ok(None);
        }
        let empty = InputResponses::new();
        let responses = request.input_responses.as_ref().unwrap_or(&empty);
        Ok(Some(match answer(responses, "user_context")? {
            Some(answer) => {
                let context = answer["content"]["context"].as_str().unwrap_or("none");
                GetPromptResponse::Complete(complete(
                    json!({"messages": [{"role": "user", "content": {
                    "type": "text", "text": format!("Prompt with context: {context}")}}]}),
                ))
            }
            None => GetPromptResponse::InputRequired(InputRequiredResult::new(
                Some(requests(vec![(
                    "user_context".to_owned(),
                    json!({"method": "elicitation/create", "params": {
                        "message": "What context should the prompt use?",
                        "requestedSchema": {"type": "object",
                            "properties": {"context": {"type": "string"}}, "required": ["context"]}}}),
                )])),
                None,
            )),
        }))
    }
}
