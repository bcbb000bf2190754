// Shared by the RooFit classes that store an exported model's bytes (internal, not in the dictionary).
#ifndef ROOML_ROOFIT_MODELFILE_H
#define ROOML_ROOFIT_MODELFILE_H

#include <RooMsgService.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "rooml/error.h"

namespace rooml_roofit {

/// The bytes of the model file at `path`; `owner` ("RooRatioFunction 'r'") prefixes the error if it cannot be read.
inline std::vector<unsigned char> readModelFile(const char *path, const std::string &owner)
{
   std::ifstream in(path, std::ios::binary);
   if (!in) {
      const std::string message = owner + ": cannot open model file '" + path + "'";
      oocoutE(nullptr, InputArguments) << message << std::endl;
      throw rooml::Error(message);
   }
   return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

} // namespace rooml_roofit

#endif
