// Every row codec against the spec's unit vectors (section 2.12): SHA-256 of
// the quantized bytes and of their decoding, with and without an importance
// vector, produced by ggml's reference library on x86-64 without FMA.
#include <gtest/gtest.h>

#include <vector>

#include "base/sha256.h"
#include "codecs/ggml_types.h"
#include "test_util.h"

namespace qforge {
namespace {

std::vector<float> SpecMatrix() {
  test::XorShift32 rng(0x12345678);
  std::vector<float> x(4 * 512);
  for (int r = 0; r < 4; ++r) {
    for (int c = 0; c < 512; ++c) x[r * 512 + c] = (rng.U01() * 2.0f - 1.0f) * (0.25f * static_cast<float>(1 << r));
  }
  for (int c = 0; c < 256; ++c) x[512 + c] = 0.0f;
  x[2 * 512 + 7] = 37.5f;
  return x;
}

std::vector<float> SpecImatrix() {
  test::XorShift32 rng(0x9E3779B9);
  std::vector<float> w(512);
  for (auto& v : w) v = 0.5f + rng.U01();
  return w;
}

std::string Hex(const uint8_t* p, size_t n) {
  static const char* k = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s += k[p[i] >> 4];
    s += k[p[i] & 15];
  }
  return s;
}

std::vector<uint8_t> Quantize(GgmlType t, const std::vector<float>& x, const float* w) {
  const size_t row = RowBytes(t, 512);
  std::vector<uint8_t> q(4 * row);
  for (int r = 0; r < 4; ++r) TraitsOf(t).encode(x.data() + r * 512, w, q.data() + r * row, 512);
  return q;
}

struct Vector {
  GgmlType type;
  size_t bytes;
  const char* quantized;
  const char* quantized_imatrix;
  const char* dequantized;
  const char* dequantized_imatrix;
};

const Vector kVectors[] = {
    {GgmlType::Q4_0, 1152, "8ac043f781399cf8d42441c2cec8b1c2851e0bf8bb01805a4ab9f95b1359718b", "4e23ae930cafad7f482d1a134d41e217b03d19132249674f17bf3c44cd21ddbe", "a30c8a1fb85467c09839d4c8420473850363300a0853d56fc079a4f65d4a4070", "b40ea661a359edcc070d03da4b73f919eb72d8cf3793cf46b824c956f5c1a42d"},
    {GgmlType::Q4_1, 1280, "b5160bf8c205af082e33a9133ac88836898602eb84f3497be82d604fd5bc9fd8", "a9ae09a991226ff0a943979bf41bbfb32b192dde9af65b4ba97a8c3188d1d991", "22bd0b902017dfb299a6df781e5f96e899a33901379ee11ed6c3b81819814bd2", "55e5bb280da555998c24b2b2cdd2040941c006137abcf362856e3cca52fbf8c9"},
    {GgmlType::Q5_0, 1408, "e0e547dde1ae51ea0b655e1d36bd4de99c24b7286803ba834eb6cd1fcdf9cba5", "94f73beebf9404b93946631a4986531b3c9e21dee3143a6a8c04e9bbdd95afee", "5f515da699961d40b31933ebaadc821a24c0dd76083d7c45fd514f1273d88942", "738c3a6712db17a99686636237aac8e24adf93f0161d52dca57852805eaa6961"},
    {GgmlType::Q5_1, 1536, "7ab26110a9b4c79e1e650fd1310c87ba1195fee5361bed995885985b2033d755", "f6284a78295f4f464f82fb3da2c590988a4d61b0392c656786e7c71d999dc557", "cea1b541bedcb3ba09d881ebaa0380d1cb83c8669c4706782b9168cb18f7c211", "50f8982bedc68737a724a11fd97e8541041e9bf5a99018708409903acaf1942c"},
    {GgmlType::Q8_0, 2176, "24e578d0643955af008c9d82bc965c803de393aac11f711ccc2a090034cd8cf3", "24e578d0643955af008c9d82bc965c803de393aac11f711ccc2a090034cd8cf3", "3d9c9d55952a4f1dd2d62a1eec769fa9040271f5e85197ee62ad028037f1cb84", "3d9c9d55952a4f1dd2d62a1eec769fa9040271f5e85197ee62ad028037f1cb84"},
    {GgmlType::Q2_K, 672, "d63e1659b7baa8b796a773bdf3d5c3ef5c5010832cd8b1307c0bd3e24b56b5d5", "150c810303ca3c27e04303c25be768a2d54be44a3963ff9a00794dacf2437e19", "e11c89cbe6792da788286af2a7fe963f771e7141742f81112dd7b97e0a7447e7", "5f5fb6f39c267359ca0224caf1fe53a9ef6053441394e466df9ab4a01a5c7bc9"},
    {GgmlType::Q3_K, 880, "53af3ee66d5fe7aaab38baa839f292c1b743fa148245009f13e666bdc30a44d1", "f3b1b9f8393556962e771724a640fabcc6d73cd9e6f44eac14149c7dcfa8b84d", "782461f75faaa9f55bf1ef4f462a59e827ff043fdf3e6e6fbab0fe2e27749a06", "7687113bf62c6bd48f45a00afe62ea4c27eeebb2c9e077cc1895a42f4f3a9752"},
    {GgmlType::Q4_K, 1152, "e852636fe29274d30c88ca653c93fd7e2983b01a17dab2268d240f4dd0c6b95e", "b37f3bbbd27bc4b0fa1dc821b0ef1ac07fabecc8fd3e67d5756046050bc3a341", "45c4fa08f98e297e4f2337db7f32b286e11ef4b526704fec07e7b4b554604b59", "f777bec584d5be999c8729a1568507f753508e67c866ab1a3c8ad19d373cafe4"},
    {GgmlType::Q5_K, 1408, "bac58db753e25ed1ab3cb0bd5cd27ef230a0128a52f735f3973aa2022dcbd758", "3cdc8facbb9f28db5efa651e8c4861e73a836e8185dc2956d1a3b05279c97b40", "d58e0acdd842d5d0cefc6b2cea17d06352096f69ab48e0d740111157380f36c3", "ed2e356bb8a643f4421ea28027c3af4d63d759f10134e1c1f682fb4b5bd86518"},
    {GgmlType::Q6_K, 1680, "6e8a3a7efde15e42337ac3f77302a64d890b58f4e8e06c94a1f7cca2810ea0ea", "f8c523bd5961dba21d94fefac5f53f320529688dfbfd08d10aa53bf0262e0589", "f8a46ca1e3ecac405a096a1abfcbd702556031ce256e28a31680a827cad63a57", "953765da0a58e4be5221df845cf26d38d18e4e27118419c9b444e4a35cc737d3"},
    {GgmlType::IQ4_NL, 1152, "c8be7cb519f1bb9e75ae1cbfc6f7bf9343002a88b2de13625c7c7a3c750d4826", "5025243941bcfcdaa0304d5a1da913d07cee19e7c23ba641a4332f8c6d5d567a", "74870c2ae51a26d994718b11d6cc91bbc03dac910836ffd957e514fe7425e689", "703d08fbe5a7905919aae45fcf326b0d766eff5dcda15581716831ddd0128ac7"},
    {GgmlType::IQ4_XS, 1088, "5bb9a1869fc7ae4433f10f9f238c97e4e46e5f964811a4dbe174b2202c6996f3", "22fa623151c26626c9cd94d641a33aa9df427158de7e7de91d60a00cff45dba5", "88de67e270c88c43dd7860fbafb4902d35dbff70e8eca0db3e3a046dfdbb830d", "58387e58057f900b45549f5748255307b717d15cc895636f0ea05291ef1f0e80"},
    {GgmlType::TQ1_0, 432, "4242935b72853b172450a7227402c48115d169934813f80c2ed4f0a2b0274124", "4242935b72853b172450a7227402c48115d169934813f80c2ed4f0a2b0274124", "39c4054a9cdf412364cf7fca4183fd8f89d56e38eb9f8725256215d4e043d1b6", "39c4054a9cdf412364cf7fca4183fd8f89d56e38eb9f8725256215d4e043d1b6"},
    {GgmlType::TQ2_0, 528, "492cd870d08d34be96bad54ee193cf749990b8940a649d6add8005ab0716e3ca", "492cd870d08d34be96bad54ee193cf749990b8940a649d6add8005ab0716e3ca", "39c4054a9cdf412364cf7fca4183fd8f89d56e38eb9f8725256215d4e043d1b6", "39c4054a9cdf412364cf7fca4183fd8f89d56e38eb9f8725256215d4e043d1b6"},
    {GgmlType::MXFP4, 1088, "89805a9fd8c4fd439c48a5bdb8a63de7e7074375f6deb5c467ce72d72d16f804", "89805a9fd8c4fd439c48a5bdb8a63de7e7074375f6deb5c467ce72d72d16f804", "b11e0e0d6c8cfdd3c024c1de0196647e6b5270273e53102559cd39cac3772452", "b11e0e0d6c8cfdd3c024c1de0196647e6b5270273e53102559cd39cac3772452"},
    {GgmlType::F16, 4096, "b5aecc05be9b94ae8b12f1c7d89e7663e642cd63316358c23c31e5bbaddf8a56", "b5aecc05be9b94ae8b12f1c7d89e7663e642cd63316358c23c31e5bbaddf8a56", "34c1586698971e4bcb15067fe1f2ef823a508cb352c69ef875e00c97af212355", "34c1586698971e4bcb15067fe1f2ef823a508cb352c69ef875e00c97af212355"},
    {GgmlType::BF16, 4096, "e35347613c98ac0f9b16ca34fa37adadd9dfbaa48cbdebb29c02c69889540b99", "e35347613c98ac0f9b16ca34fa37adadd9dfbaa48cbdebb29c02c69889540b99", "65531e1f318232e7f93377739b4e4a45666f144efa491861f4518bb01519a67e", "65531e1f318232e7f93377739b4e4a45666f144efa491861f4518bb01519a67e"},
};

TEST(SpecVectors, InputsAreTheSpecs) {
  auto x = SpecMatrix();
  auto w = SpecImatrix();
  EXPECT_EQ(Sha256::HexOf(x.data(), x.size() * 4), "325eef65d23f84eaeb3b9b0a53258f6b82c45b7df3bcac0538d448f28da67b61");
  EXPECT_EQ(Sha256::HexOf(w.data(), w.size() * 4), "1fa8005b7b5eb10ff3ee539ab567877afc28b2d0c70ecbbeb6340f46cadc3112");
}

class SpecVector : public ::testing::TestWithParam<Vector> {};

TEST_P(SpecVector, QuantizedAndDequantizedBytes) {
  const Vector& v = GetParam();
  const auto x = SpecMatrix();
  const auto w = SpecImatrix();
  for (bool with_imatrix : {false, true}) {
    SCOPED_TRACE(with_imatrix ? "with imatrix" : "without imatrix");
    const auto q = Quantize(v.type, x, with_imatrix ? w.data() : nullptr);
    ASSERT_EQ(q.size(), v.bytes);
    EXPECT_EQ(Sha256::HexOf(q.data(), q.size()), with_imatrix ? v.quantized_imatrix : v.quantized);
    std::vector<float> y(2048);
    TraitsOf(v.type).decode(q.data(), y.data(), 2048);
    EXPECT_EQ(Sha256::HexOf(y.data(), y.size() * 4), with_imatrix ? v.dequantized_imatrix : v.dequantized);
  }
}

INSTANTIATE_TEST_SUITE_P(Types, SpecVector, ::testing::ValuesIn(kVectors),
                         [](const auto& info) { return GgmlTypeName(info.param.type); });

TEST(SpecVectors, FirstBlocks) {
  const auto x = SpecMatrix();
  const auto w = SpecImatrix();
  const std::pair<GgmlType, const char*> blocks[] = {
      {GgmlType::Q4_0, "cca7381f1cc8d91ee734031c594b10bdf700"},
      {GgmlType::Q4_1, "e62703b3c8e0e43726e228cbfce3a6b4ef4208ff"},
      {GgmlType::Q5_0, "cca33e2e58606f2e3780b22bbf671519a386207aee11"},
      {GgmlType::Q5_1, "a52303b3c1d1a79f90d1c76f4dd33098eae64c78df8500ee"},
      {GgmlType::Q8_0, "dc170893c702f0a80a4655b9e9cd7fb40d794f716ac0ac6da8517a772d426ccc8e7a"},
      {GgmlType::MXFP4, "7a617f7de0fa7ff166777e5b6d77def277"},
      {GgmlType::IQ4_NL, "c697271f1cd8e91ee723020d4a3c10cdf700"},
      {GgmlType::Q2_K, "9cacaaceccddecdccbccccefffeeddceed9c58e9c92c7de666ac756053206183"},
      {GgmlType::Q3_K, "69fd95791f35f17ac2ed83937683a35eeaa214f97f2e33f49ef0cef6144db5f2"},
      {GgmlType::Q4_K, "6310321cf9f9fffdf6f6f9fc89abfbeeb8c0949786c2e87c6dd376342f12282f"},
      {GgmlType::Q5_K, "240c061cfbfcfdfdf8f9fcfeb7cdecff6ffa927e1836f77dc5ea84947184a559"},
      {GgmlType::Q6_K, "be6b3ea0b4e63eae6b0216bd20c3ade2cbf214a156d367db604194ef43fede00"},
      {GgmlType::IQ4_XS, "31843fc0ee0f23f3271f1cd8e91ee723020d4a3c10cdf700a3f26636e7927128"},
      {GgmlType::TQ1_0, "9f4881837b45a3d8d4478681b90b62b0dfc4cc810fd237f5ccdf56cff57f2ec6"},
      {GgmlType::TQ2_0, "9958559585182996565825555210514266a246555016a49a466601869a5594a2"},
  };
  for (const auto& [t, hex] : blocks) {
    const auto q = Quantize(t, x, nullptr);
    const size_t n = std::min<size_t>(std::string(hex).size() / 2, static_cast<size_t>(TraitsOf(t).block_bytes));
    EXPECT_EQ(Hex(q.data(), n), hex) << GgmlTypeName(t);
  }
  EXPECT_EQ(Hex(Quantize(GgmlType::IQ4_NL, x, w.data()).data(), 18), "ce97271f1cd8e91ee723020d4a3c10cdf700");
  EXPECT_EQ(Hex(Quantize(GgmlType::Q4_0, x, w.data()).data(), 18), "58a8482e2bc8d92dd734131c594b21bce711");
}

TEST(SpecVectors, ZeroBlocksKeepTheReferenceConventions) {
  const auto x = SpecMatrix();
  auto row1 = [&](GgmlType t) {
    const auto q = Quantize(t, x, nullptr);
    return Hex(q.data() + RowBytes(t, 512), static_cast<size_t>(TraitsOf(t).block_bytes));
  };
  EXPECT_EQ(row1(GgmlType::Q4_0), "0080" + std::string(32, '8'));
  EXPECT_EQ(row1(GgmlType::Q5_0), "0080ffffffff" + std::string(32, '0'));
  EXPECT_EQ(row1(GgmlType::Q4_1), std::string(40, '0'));
  EXPECT_EQ(row1(GgmlType::MXFP4), std::string(34, '0'));
  EXPECT_EQ(row1(GgmlType::IQ4_NL), "0000" + std::string(32, '8'));
  EXPECT_EQ(row1(GgmlType::IQ4_XS), "0080aaaa00000000" + std::string(256, '8'));
  for (GgmlType t : {GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K}) {
    EXPECT_EQ(row1(t), std::string(static_cast<size_t>(2 * TraitsOf(t).block_bytes), '0')) << GgmlTypeName(t);
  }
  std::string tq2;
  for (int i = 0; i < 64; ++i) tq2 += "55";
  EXPECT_EQ(row1(GgmlType::TQ2_0), tq2 + "0000");
  std::string tq1;
  for (int i = 0; i < 48; ++i) tq1 += "80";
  EXPECT_EQ(row1(GgmlType::TQ1_0), tq1 + "7f7f7f7f0000");
}

}  // namespace
}  // namespace qforge
