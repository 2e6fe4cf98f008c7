// Comparing qforge's GGUF output with llama.cpp's reference manifests
// (../shared/reference/llama.cpp/*/manifest.json): tensor names, types,
// shapes, data SHA-256 and metadata values.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "qforge/status.h"

namespace qforge::test {

// The manifest entry `label` of reference model `model` ("house-14m",
// "arch/llama3"); an empty object (and a test failure) when absent.
nlohmann::json Manifest(const std::string& model, const std::string& label);

// Every tensor of the manifest entry present in the GGUF at path with the
// same type, shape and bytes (and no others), and every general.*,
// tokenizer.* and architecture key with the same value (and no others).
void ExpectMatchesManifest(const std::string& path, const nlohmann::json& ref);

// Converts src (HF folder or GGUF) to GGUF `type` as llama.cpp's converter
// or llama-quantize would, with no options.
Status ConvertWithPreset(const std::string& src, const std::string& type, const std::string& out, int threads = 2);

}  // namespace qforge::test
