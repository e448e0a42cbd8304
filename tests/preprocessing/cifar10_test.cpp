#include "cifar10.hpp"

#include <gtest/gtest.h>

#include "util/error.hpp"

namespace shardgan::pack {
namespace {

TEST(Cifar10Classes, NamesAndIndicesResolveToSortedCifarLabels) {
  EXPECT_EQ(resolve_cifar10_classes({"dog", "cat"}), (std::vector<int>{3, 5}));
  EXPECT_EQ(resolve_cifar10_classes({"5", "3"}), (std::vector<int>{3, 5}));
  EXPECT_EQ(resolve_cifar10_classes({"truck", "0"}), (std::vector<int>{0, 9}));
  EXPECT_EQ(cifar10_class_names()[3], "cat");
  EXPECT_EQ(cifar10_class_names()[5], "dog");
}

TEST(Cifar10Classes, UnknownOrRepeatedClassesAreErrors) {
  EXPECT_THROW(resolve_cifar10_classes({"cat", "wolf"}), Error);
  EXPECT_THROW(resolve_cifar10_classes({"10"}), Error);
  EXPECT_THROW(resolve_cifar10_classes({"cat", "3"}), Error);
  EXPECT_THROW(resolve_cifar10_classes({}), Error);
}

}  // namespace
}  // namespace shardgan::pack
